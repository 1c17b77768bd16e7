/* Directories the substrate keeps its data in (fsdir.c). Internal. */
#ifndef MK_FSDIR_H
#define MK_FSDIR_H

/* Creates `path` and any missing parent, mode 0700 (a data dir holds a
 * node's log and blobs: nobody else's to read). 0 when it exists as a
 * directory afterwards; MK_EINVAL for an empty or over-long path,
 * MK_EEXIST when something else has the name, or -errno. */
int mk__make_dirs(const char *path);

#endif
