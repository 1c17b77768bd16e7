/* Raft messages as the bridge carries them (src/mosaik/raft_wire.c): every
 * kind survives encode then decode field for field, the decoded entries
 * and snapshot data are libraft-owned allocations, and what a lying voter
 * could send is refused before anything is allocated for it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "mosaik/error.h"
#include "mosaik/group_internal.h"

/* Head and payloads, back to back, as the bridge sends them. */
static void flat(const struct raft_message *m, mk_buf *out)
{
    mk__rmsg_parts parts;
    mk_buf_init(out);
    assert_int_equal(mk__rmsg_encode(m, out, &parts), 0);
    for (unsigned i = 0; i < parts.n; i++)
        mk_put_raw(out, parts.entries[i].buf.base, parts.entries[i].buf.len);
    if (parts.data_len)
        mk_put_raw(out, parts.data, parts.data_len);
    assert_int_equal(out->err, 0);
}

static void roundtrip(const struct raft_message *m, struct raft_message *out)
{
    mk_buf b;
    flat(m, &b);
    assert_int_equal(mk__rmsg_decode(b.data, b.len, out), 0);
    assert_int_equal(out->type, m->type);
    mk_buf_free(&b);
}

static void test_append_entries(void **state)
{
    (void)state;
    char big[1000];
    memset(big, 'x', sizeof big);
    struct raft_entry e[3] = {
        {.term = 7, .type = RAFT_COMMAND, .buf = {"hello", 5}},
        {.term = 7, .type = RAFT_BARRIER, .buf = {NULL, 0}},
        {.term = 8, .type = RAFT_CHANGE, .buf = {big, sizeof big}},
    };
    struct raft_message m = {.type = RAFT_IO_APPEND_ENTRIES};
    m.append_entries = (struct raft_append_entries){
        .term = 8, .prev_log_index = 41, .prev_log_term = 7,
        .leader_commit = 40, .entries = e, .n_entries = 3};
    struct raft_message d;
    roundtrip(&m, &d);
    const struct raft_append_entries *a = &d.append_entries;
    assert_int_equal(a->term, 8);
    assert_int_equal(a->prev_log_index, 41);
    assert_int_equal(a->prev_log_term, 7);
    assert_int_equal(a->leader_commit, 40);
    assert_int_equal(a->n_entries, 3);
    for (unsigned i = 0; i < 3; i++) {
        assert_int_equal(a->entries[i].term, e[i].term);
        assert_int_equal(a->entries[i].type, e[i].type);
        assert_int_equal(a->entries[i].buf.len, e[i].buf.len);
        if (e[i].buf.len)
            assert_memory_equal(a->entries[i].buf.base, e[i].buf.base,
                                e[i].buf.len);
        /* One batch for all, as libraft frees it; 8-byte aligned. */
        assert_ptr_equal(a->entries[i].batch, a->entries[0].batch);
        assert_int_equal((uintptr_t)a->entries[i].buf.base % 8, 0);
    }
    mk__rmsg_free(&d);

    /* A heartbeat: no entries, nothing allocated. */
    m.append_entries.n_entries = 0;
    m.append_entries.entries = NULL;
    roundtrip(&m, &d);
    assert_int_equal(d.append_entries.n_entries, 0);
    assert_null(d.append_entries.entries);
    mk__rmsg_free(&d);
}

static void test_small_kinds(void **state)
{
    (void)state;
    struct raft_message m = {.type = RAFT_IO_REQUEST_VOTE}, d;
    m.request_vote = (struct raft_request_vote){
        .term = 9, .candidate_id = 0xfeedbeefcafe1234ull,
        .last_log_index = 100, .last_log_term = 8, .disrupt_leader = true,
        .pre_vote = true};
    roundtrip(&m, &d);
    assert_true(d.request_vote.candidate_id == 0xfeedbeefcafe1234ull);
    assert_true(d.request_vote.disrupt_leader && d.request_vote.pre_vote);
    assert_int_equal(d.request_vote.last_log_index, 100);

    m = (struct raft_message){.type = RAFT_IO_REQUEST_VOTE_RESULT};
    m.request_vote_result = (struct raft_request_vote_result){
        .term = 9, .vote_granted = true, .pre_vote = raft_tribool_false};
    roundtrip(&m, &d);
    assert_true(d.request_vote_result.vote_granted);
    assert_int_equal(d.request_vote_result.pre_vote, raft_tribool_false);

    m = (struct raft_message){.type = RAFT_IO_APPEND_ENTRIES_RESULT};
    m.append_entries_result = (struct raft_append_entries_result){
        .term = 3, .rejected = 17, .last_log_index = 16};
    roundtrip(&m, &d);
    assert_int_equal(d.append_entries_result.rejected, 17);
    assert_int_equal(d.append_entries_result.last_log_index, 16);

    m = (struct raft_message){.type = RAFT_IO_TIMEOUT_NOW};
    m.timeout_now = (struct raft_timeout_now){
        .term = 4, .last_log_index = 5, .last_log_term = 4};
    roundtrip(&m, &d);
    assert_int_equal(d.timeout_now.last_log_index, 5);
}

static void test_install_snapshot(void **state)
{
    (void)state;
    struct raft_message m = {.type = RAFT_IO_INSTALL_SNAPSHOT}, d;
    struct raft_install_snapshot *s = &m.install_snapshot;
    s->term = 5;
    s->last_index = 900;
    s->last_term = 4;
    s->conf_index = 880;
    raft_configuration_init(&s->conf);
    assert_int_equal(raft_configuration_add(&s->conf, 11, "aa", RAFT_VOTER), 0);
    assert_int_equal(raft_configuration_add(&s->conf, 12, "bb", RAFT_STANDBY),
                     0);
    s->data.base = "the machine";
    s->data.len = 11;
    roundtrip(&m, &d);
    const struct raft_install_snapshot *t = &d.install_snapshot;
    assert_int_equal(t->last_index, 900);
    assert_int_equal(t->conf_index, 880);
    assert_int_equal(t->conf.n, 2);
    assert_int_equal(t->conf.servers[1].id, 12);
    assert_int_equal(t->conf.servers[1].role, RAFT_STANDBY);
    assert_string_equal(t->conf.servers[0].address, "aa");
    assert_int_equal(t->data.len, 11);
    assert_memory_equal(t->data.base, "the machine", 11);
    mk__rmsg_free(&d);
    raft_configuration_close(&s->conf);
}

/* Decoding `m`'s bytes with one change must fail. */
static void refused(const uint8_t *p, size_t n)
{
    struct raft_message d;
    assert_int_equal(mk__rmsg_decode(p, n, &d), MK_EDECODE);
}

static void test_refusals(void **state)
{
    (void)state;
    struct raft_entry e = {.term = 2, .type = RAFT_COMMAND,
                           .buf = {"abcdef", 6}};
    struct raft_message m = {.type = RAFT_IO_APPEND_ENTRIES};
    m.append_entries = (struct raft_append_entries){
        .term = 2, .prev_log_index = 1, .prev_log_term = 1,
        .leader_commit = 1, .entries = &e, .n_entries = 1};
    mk_buf b;
    flat(&m, &b);
    /* Every truncation, and one byte too many. */
    for (size_t cut = 0; cut < b.len; cut++)
        refused(b.data, cut);
    uint8_t *longer = malloc(b.len + 1);
    memcpy(longer, b.data, b.len);
    longer[b.len] = 0;
    refused(longer, b.len + 1);
    free(longer);
    /* Unknown message type, unknown entry type. */
    uint8_t *x = malloc(b.len);
    memcpy(x, b.data, b.len);
    x[0] = 99;
    refused(x, b.len);
    memcpy(x, b.data, b.len);
    /* type byte, four one-byte varints, count, entry term: then type */
    assert_int_equal(x[7], RAFT_COMMAND);
    x[7] = 9;
    refused(x, b.len);
    free(x);
    mk_buf_free(&b);

    /* A count of entries the bytes cannot hold is refused before any
     * allocation: a billion entries in six bytes. */
    mk_buf h;
    mk_buf_init(&h);
    mk_put_u8(&h, RAFT_IO_APPEND_ENTRIES);
    for (int i = 0; i < 4; i++)
        mk_put_varint(&h, 1);
    mk_put_varint(&h, 1000000000);
    refused(h.data, h.len);
    /* An entry claiming more payload than is there. */
    mk_buf_reset(&h);
    mk_put_u8(&h, RAFT_IO_APPEND_ENTRIES);
    for (int i = 0; i < 4; i++)
        mk_put_varint(&h, 1);
    mk_put_varint(&h, 1);
    mk_put_varint(&h, 1);
    mk_put_u8(&h, RAFT_COMMAND);
    mk_put_varint(&h, (uint64_t)1 << 40);
    mk_put_raw(&h, "abc", 3);
    refused(h.data, h.len);
    /* A vote with unknown flag bits. */
    mk_buf_reset(&h);
    mk_put_u8(&h, RAFT_IO_REQUEST_VOTE);
    for (int i = 0; i < 4; i++)
        mk_put_varint(&h, 1);
    mk_put_u8(&h, 4);
    refused(h.data, h.len);
    /* A snapshot whose data length disagrees with the bytes. */
    mk_buf_reset(&h);
    mk_put_u8(&h, RAFT_IO_INSTALL_SNAPSHOT);
    for (int i = 0; i < 4; i++)
        mk_put_varint(&h, 1);
    mk_put_varint(&h, 0);
    mk_put_varint(&h, 10);
    mk_put_raw(&h, "short", 5);
    refused(h.data, h.len);
    mk_buf_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_entries),
        cmocka_unit_test(test_small_kinds),
        cmocka_unit_test(test_install_snapshot),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
