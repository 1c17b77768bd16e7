/* Compute handles (include/coalition/compute.h): the reader, a replica
 * of the committee's state, and submission from any node. */
#include "coalition/compute.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compute_internal.h"
#include "modules_internal.h"
#include "mosaik/error.h"
#include "reader.h"

/* The committee GroupId, from the module and the machine's signature
 * alone (no machine needed), after checking the parameters. */
int co__compute_group(const co_coalition_config *cfg, co_module_info *m,
                      mk_id *group, char *err)
{
    int rc = co_module_info_get(cfg, CO_MODULE_COMPUTE, m, err);
    co_compute_params p;
    if (rc == 0)
        rc = co__compute_params_of(m, &p, err);
    if (rc < 0)
        return rc;
    struct mk_fsm shape = {.version = MK_FSM_VERSION};
    mk_id_from_str(&shape.signature, CO__COMPUTE_SIGNATURE);
    co_module_group_id(m, &shape, group);
    return 0;
}

/* ---- the reader ------------------------------------------------------------- */

struct co_compute_reader {
    co__reader base;
    co_compute_cb cb;
    void *data;
};

static void on_reader(co__reader *base, int status)
{
    co_compute_reader *r = base->owner;
    r->cb(r, status, r->data);
}

int co_compute_read(mk_node *net, const co_coalition_config *cfg,
                    uint32_t timeout_ms, co_compute_cb cb, void *data,
                    co_compute_reader **out, char *err)
{
    co_compute_params p;
    int rc = co_compute_params_get(cfg, &p, err);
    if (rc < 0)
        return rc;
    co_compute_reader *r = calloc(1, sizeof *r);
    if (!r)
        return MK_ENOMEM;
    r->cb = cb;
    r->data = data;
    rc = co__reader_open(&r->base, net, cfg, CO_MODULE_COMPUTE,
                         co__compute_fsm_init, co__compute_fsm_free,
                         co__compute_retirement, timeout_ms, on_reader, r,
                         err);
    if (rc < 0) {
        free(r);
        return rc;
    }
    *out = r;
    return 0;
}

void co_compute_close(co_compute_reader *r, mk_close_cb done, void *data)
{
    co__reader_close(&r->base, done, data);
}

int64_t co_compute_now(const co_compute_reader *r)
{
    return co__compute_now(&r->base.fsm);
}

size_t co_compute_provider_count(const co_compute_reader *r)
{
    return co__compute_provider_count(&r->base.fsm);
}

void co_compute_providers_foreach(const co_compute_reader *r,
                                  bool (*fn)(const co_compute_provider_info *p,
                                             void *data),
                                  void *data)
{
    co_compute_provider_info info;
    for (size_t i = 0; i < co__compute_provider_count(&r->base.fsm); i++) {
        co__compute_provider_at(&r->base.fsm, i, &info);
        if (!fn(&info, data))
            return;
    }
}

int co_compute_status_get(const co_compute_reader *r, const mk_id *request_id,
                          co_compute_status *out)
{
    return co__compute_request_find(&r->base.fsm, request_id, out)
               ? 0
               : MK_ENOENT;
}

size_t co_compute_request_count(const co_compute_reader *r)
{
    return co__compute_request_count(&r->base.fsm);
}

void co_compute_requests_foreach(const co_compute_reader *r,
                                 bool (*fn)(const co_compute_status *s,
                                            void *data),
                                 void *data)
{
    co_compute_status s;
    for (size_t i = 0; i < co__compute_request_count(&r->base.fsm); i++) {
        co__compute_request_at(&r->base.fsm, i, &s);
        if (!fn(&s, data))
            return;
    }
}

size_t co_compute_output(const co_compute_reader *r, const mk_id *request_id,
                         size_t from,
                         void (*fn)(int stream, const uint8_t *bytes,
                                    size_t len, void *data),
                         void *data)
{
    return co__compute_output(&r->base.fsm, request_id, from, fn, data);
}

void co_compute_retirement(const co_compute_reader *r, co_retirement *out)
{
    *out = *co__compute_retirement(&r->base.fsm);
}

/* ---- submitting ----------------------------------------------------------------- */

typedef struct submission {
    void (*done)(int, const co_compute_answer *, void *);
    void *data;
} submission;

static void on_submitted(int status, const uint8_t *res, size_t len,
                         void *data)
{
    submission *s = data;
    co_compute_answer a;
    status = co__compute_answer_of(status, CO__COMPUTE_SUBMIT, res, len, &a);
    s->done(status, status == 0 ? &a : NULL, s->data);
    free(s);
}

int co_compute_submit(mk_node *net, const co_coalition_config *cfg,
                      const co_compute_request *req,
                      const mk_keypair *submitter, uint32_t timeout_ms,
                      void (*done)(int status, const co_compute_answer *a,
                                   void *data),
                      void *data, char *err)
{
    co_module_info m;
    mk_id group;
    int rc = co__compute_group(cfg, &m, &group, err);
    if (rc < 0)
        return rc;
    submission *s = malloc(sizeof *s);
    if (!s)
        return MK_ENOMEM;
    *s = (submission){done, data};
    mk_buf cmd;
    mk_buf_init(&cmd);
    co__compute_cmd_submit(&cmd, &m.root, req, submitter);
    rc = co__submit(net, &group, &cmd, timeout_ms, on_submitted, s);
    mk_buf_free(&cmd);
    if (rc < 0)
        free(s);
    return rc;
}

int co_compute_log_verify(const co_coalition_config *cfg,
                          const co_compute_log *log, char *err)
{
    co_module_info m;
    int rc = co_module_info_get(cfg, CO_MODULE_COMPUTE, &m, err);
    return rc < 0 ? rc : co__compute_log_verify(&m.root, log);
}
