/* The `key=value` parameters of module and confluence content strings
 * (content_param.h). */
#include "content_param.h"

#include <string.h>

const char *co__content_param(const char *content, const char *key,
                              size_t *len)
{
    size_t klen = strlen(key);
    const char *semi = content ? strchr(content, ';') : NULL;
    while (semi) {
        const char *p = semi + 1;
        semi = strchr(p, ';');
        if (strncmp(p, key, klen) != 0 || p[klen] != '=')
            continue;
        const char *v = p + klen + 1;
        *len = semi ? (size_t)(semi - v) : strlen(v);
        return v;
    }
    return NULL;
}

int co__content_param_u64(const char *content, const char *key, uint64_t dflt,
                          uint64_t *out)
{
    size_t n;
    const char *v = co__content_param(content, key, &n);
    *out = dflt;
    if (!v)
        return 0;
    if (n == 0)
        return -1;
    /* By hand rather than strtoull: that one saturates at ULLONG_MAX,
     * and accepts signs and blanks, which a config must not mean. */
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned)(v[i] - '0');
        if (d > 9 || x > (UINT64_MAX - d) / 10)
            return -1;
        x = x * 10 + d;
    }
    *out = x;
    return 0;
}
