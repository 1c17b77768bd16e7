/* libFuzzer target for the coalition config loader.
 *
 * Any input must either be refused with CO_ECONFIG and a message, or load;
 * and whatever loads must write back to JSON that loads to the same
 * coalition_id (the writer and the loader agree on every shape). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "coalition/config_file.h"
#include "coalition/identity.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[CO_ERRMSG_SIZE];
    co_config_file *f, *g;
    err[0] = '\0';
    int rc = co_config_file_parse((const char *)data, size, "fuzz.json", &f,
                                  err);
    if (rc < 0) {
        if (f != NULL || err[0] == '\0')
            abort();
        return 0;
    }
    const co_coalition_config *c = co_config_file_coalition(f);
    mk_id a, b;
    if (co_coalition_id(c, &a, err) < 0)
        abort(); /* validated configs always derive */
    char *text;
    if (co_config_to_json(c, &text, err) < 0)
        abort();
    if (co_config_file_parse(text, strlen(text), "rt.json", &g, err) < 0)
        abort();
    if (co_coalition_id(co_config_file_coalition(g), &b, err) < 0 ||
        !mk_id_eq(&a, &b))
        abort();
    free(text);
    co_config_file_free(g);
    co_config_file_free(f);
    return 0;
}
