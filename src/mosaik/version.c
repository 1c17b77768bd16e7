/* The version compiled into the library itself, so a program linked
 * against a shared libmosaik can tell which one the loader picked. */
#include "mosaik/version.h"

const char *mk_version(void)
{
    return MK_VERSION;
}
