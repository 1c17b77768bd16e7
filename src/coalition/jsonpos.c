/* Line numbers for JSON key paths (jsonpos.h). */
#include "jsonpos.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
    char *path;
    int line;
} entry;

struct co__jsonpos {
    entry *v;
    size_t n, cap;
};

typedef struct scanner {
    const char *s;
    size_t len, at;
    int line;
    int depth;
    co__jsonpos *out;
    int oom;
} scanner;

/* Deeper documents are valid JSON but no config nests beyond a few levels;
 * stopping keeps the recursion bounded on hostile input. */
#define MAX_DEPTH 64

static int peek(scanner *sc)
{
    return sc->at < sc->len ? (unsigned char)sc->s[sc->at] : -1;
}

static void advance(scanner *sc)
{
    if (sc->at < sc->len && sc->s[sc->at++] == '\n')
        sc->line++;
}

static void skip_ws(scanner *sc)
{
    for (;;) {
        int c = peek(sc);
        if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
            return;
        advance(sc);
    }
}

static void record(scanner *sc, const char *path, int line)
{
    co__jsonpos *p = sc->out;
    if (sc->oom)
        return;
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 64;
        entry *v = realloc(p->v, cap * sizeof *v);
        if (!v) {
            sc->oom = 1;
            return;
        }
        p->v = v;
        p->cap = cap;
    }
    char *copy = strdup(path);
    if (!copy) {
        sc->oom = 1;
        return;
    }
    p->v[p->n].path = copy;
    p->v[p->n].line = line;
    p->n++;
}

static void put_utf8(char **o, uint32_t cp)
{
    char *p = *o;
    if (cp < 0x80) {
        *p++ = (char)cp;
    } else if (cp < 0x800) {
        *p++ = (char)(0xC0 | cp >> 6);
        *p++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *p++ = (char)(0xE0 | cp >> 12);
        *p++ = (char)(0x80 | (cp >> 6 & 0x3F));
        *p++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *p++ = (char)(0xF0 | cp >> 18);
        *p++ = (char)(0x80 | (cp >> 12 & 0x3F));
        *p++ = (char)(0x80 | (cp >> 6 & 0x3F));
        *p++ = (char)(0x80 | (cp & 0x3F));
    }
    *o = p;
}

static uint32_t hex4(const char *s)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
    }
    return v;
}

/* Reads a string token; when `key` is non-NULL, decodes it there (it must
 * hold the raw token's length + 1: decoding never grows a string). */
static void scan_string(scanner *sc, char *key)
{
    advance(sc); /* opening quote */
    char *o = key;
    while (sc->at < sc->len && sc->s[sc->at] != '"') {
        char c = sc->s[sc->at];
        if (c == '\\' && sc->at + 1 < sc->len) {
            char e = sc->s[sc->at + 1];
            advance(sc);
            advance(sc);
            if (e == 'u' && sc->at + 4 <= sc->len) {
                uint32_t cp = hex4(sc->s + sc->at);
                sc->at += 4;
                if (cp >= 0xD800 && cp < 0xDC00 && sc->at + 6 <= sc->len &&
                    sc->s[sc->at] == '\\' && sc->s[sc->at + 1] == 'u') {
                    uint32_t lo = hex4(sc->s + sc->at + 2);
                    sc->at += 6;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                }
                if (o)
                    put_utf8(&o, cp);
                continue;
            }
            if (o) {
                switch (e) {
                case 'n': *o++ = '\n'; break;
                case 't': *o++ = '\t'; break;
                case 'r': *o++ = '\r'; break;
                case 'b': *o++ = '\b'; break;
                case 'f': *o++ = '\f'; break;
                default: *o++ = e; break;
                }
            }
            continue;
        }
        if (o)
            *o++ = c;
        advance(sc);
    }
    advance(sc); /* closing quote */
    if (o)
        *o = '\0';
}

static void scan_value(scanner *sc, const char *path);

static void child(scanner *sc, const char *path, const char *key, long index)
{
    size_t plen = strlen(path);
    size_t need = plen + (key ? strlen(key) + 2 : 24);
    char *sub = malloc(need);
    if (!sub) {
        sc->oom = 1;
        return;
    }
    memcpy(sub, path, plen);
    sub[plen] = '\0';
    if (key)
        strcat(strcat(sub, plen ? "." : ""), key);
    else
        snprintf(sub + plen, need - plen, "[%ld]", index);
    scan_value(sc, sub);
    free(sub);
}

static void scan_object(scanner *sc, const char *path)
{
    advance(sc); /* '{' */
    for (;;) {
        skip_ws(sc);
        int c = peek(sc);
        if (c == '}' || c == -1) {
            advance(sc);
            return;
        }
        if (c == ',') {
            advance(sc);
            continue;
        }
        /* A key: decoded into a buffer as long as its raw token. */
        size_t start = sc->at, end = start + 1;
        while (end < sc->len && sc->s[end] != '"')
            end += sc->s[end] == '\\' ? 2 : 1;
        char *key = malloc(end - start + 1);
        if (!key) {
            sc->oom = 1;
            sc->at = sc->len;
            return;
        }
        scan_string(sc, key);
        skip_ws(sc);
        advance(sc); /* ':' */
        child(sc, path, key, 0);
        free(key);
    }
}

static void scan_array(scanner *sc, const char *path)
{
    advance(sc); /* '[' */
    long index = 0;
    for (;;) {
        skip_ws(sc);
        int c = peek(sc);
        if (c == ']' || c == -1) {
            advance(sc);
            return;
        }
        if (c == ',') {
            advance(sc);
            continue;
        }
        child(sc, path, NULL, index++);
    }
}

static void scan_value(scanner *sc, const char *path)
{
    skip_ws(sc);
    record(sc, path, sc->line);
    int c = peek(sc);
    if (c == '{' || c == '[') {
        if (++sc->depth > MAX_DEPTH || sc->oom) {
            sc->at = sc->len;
            return;
        }
        if (c == '{')
            scan_object(sc, path);
        else
            scan_array(sc, path);
        sc->depth--;
        return;
    }
    if (c == '"') {
        scan_string(sc, NULL);
        return;
    }
    /* number, true, false, null */
    while ((c = peek(sc)) != -1 && c != ',' && c != '}' && c != ']' &&
           c != ' ' && c != '\n' && c != '\t' && c != '\r')
        advance(sc);
}

co__jsonpos *co__jsonpos_scan(const char *text, size_t len)
{
    co__jsonpos *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    scanner sc = {.s = text, .len = len, .line = 1, .out = p};
    scan_value(&sc, "");
    if (sc.oom) {
        co__jsonpos_free(p);
        return NULL;
    }
    return p;
}

int co__jsonpos_line(const co__jsonpos *p, const char *path)
{
    size_t len = strlen(path);
    while (p) {
        for (size_t i = 0; i < p->n; i++)
            if (strlen(p->v[i].path) == len &&
                memcmp(p->v[i].path, path, len) == 0)
                return p->v[i].line;
        if (len == 0)
            break;
        /* Fall back to the parent: "a.b[2]" -> "a.b" -> "a" -> "". */
        while (len > 0 && path[len - 1] != '.' && path[len - 1] != '[')
            len--;
        if (len > 0)
            len--;
    }
    return 1;
}

void co__jsonpos_free(co__jsonpos *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++)
        free(p->v[i].path);
    free(p->v);
    free(p);
}
