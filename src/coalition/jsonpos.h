/* Internal: where each value of a JSON text starts, by key path.
 *
 * jansson keeps no positions for decoded values, but a config error must
 * name its line. This scans the text once (after jansson accepted it, so
 * the scanner may assume valid JSON) and records the line of every value
 * under its path: "confluences[0].acl.mrtds[1]".
 */
#ifndef CO_JSONPOS_H
#define CO_JSONPOS_H

#include <stddef.h>

typedef struct co__jsonpos co__jsonpos;

/* NULL on allocation failure. */
co__jsonpos *co__jsonpos_scan(const char *text, size_t len);

/* Line (1-based) of `path`, or of its nearest recorded ancestor. */
int co__jsonpos_line(const co__jsonpos *p, const char *path);

void co__jsonpos_free(co__jsonpos *p);

#endif /* CO_JSONPOS_H */
