/* The version compiled into the library itself, so a program linked
 * against a shared libcoalition can tell which one the loader picked. */
#include "coalition/version.h"

const char *co_version(void)
{
    return CO_VERSION;
}
