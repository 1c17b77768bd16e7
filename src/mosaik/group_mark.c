/* The durable watermark (group_io.h): one small file in a member's data
 * dir saying "this log once held every entry up to index N".
 *
 * Layout, 32 bytes: "MKDW" u32le(version 1) u64le(index) u64le(~index)
 * u64le(0). The index is stored twice (plain and inverted) so a torn or
 * damaged write is recognised and ignored rather than believed: a missing
 * watermark only weakens detection, a wrong high one would refuse a
 * healthy log.
 *
 * The file is rewritten in place, never replaced: once it exists, its
 * block is allocated and writing it needs no free space, which is exactly
 * when it matters (lowering it before a truncate on a full disk).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mosaik/codec.h"
#include "mosaik/error.h"
#include "mosaik/group_io.h"

#define MARK_LEN 32

static int mark_path(const char *dir, char *out, size_t len)
{
    int n = snprintf(out, len, "%s/%s", dir, MK__MARK_FILE);
    return n < 0 || (size_t)n >= len ? MK_EINVAL : 0;
}

int mk__mark_read(const char *dir, uint64_t *index)
{
    char path[4096];
    uint8_t b[MARK_LEN];
    if (mark_path(dir, path, sizeof path) != 0)
        return MK_EINVAL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? MK_ENOENT : -errno;
    ssize_t n = pread(fd, b, sizeof b, 0);
    int err = n < 0 ? -errno : 0;
    close(fd);
    if (err)
        return err;
    if (n != MARK_LEN || memcmp(b, "MKDW", 4) != 0 || b[4] != 1 ||
        mk_load_le64(b + 8) != ~mk_load_le64(b + 16))
        return MK_ENOENT; /* damaged: as if there were none */
    *index = mk_load_le64(b + 8);
    return 0;
}

int mk__mark_write(const char *dir, uint64_t index)
{
    char path[4096];
    uint8_t b[MARK_LEN] = {'M', 'K', 'D', 'W', 1, 0, 0, 0};
    if (mark_path(dir, path, sizeof path) != 0)
        return MK_EINVAL;
    mk_store_le64(b + 8, index);
    mk_store_le64(b + 16, ~index);
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    ssize_t n = pwrite(fd, b, sizeof b, 0);
    int err = n < 0 ? -errno : n != MARK_LEN ? MK_EIO : 0;
    if (close(fd) != 0 && !err)
        err = -errno;
    return err;
}

void mk__mark_remove(const char *dir)
{
    char path[4096];
    if (mark_path(dir, path, sizeof path) == 0)
        unlink(path);
}
