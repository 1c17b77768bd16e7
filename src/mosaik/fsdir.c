/* mkdir -p for the data dirs of groups and blob stores (fsdir.h). */
#include "mosaik/fsdir.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "mosaik/error.h"

int mk__make_dirs(const char *path)
{
    char buf[4096];
    if (strlen(path) >= sizeof buf || !path[0])
        return MK_EINVAL;
    strcpy(buf, path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(buf, 0700) != 0 && errno != EEXIST)
        return -errno;
    struct stat st;
    if (stat(buf, &st) != 0)
        return -errno;
    return S_ISDIR(st.st_mode) ? 0 : MK_EEXIST;
}
