/*
 * slora_adapter_file.c: opens and reads the files of a PEFT folder into
 * memory the engine owns, and the sha256 the catalog pins an adapter's
 * weights with.
 *
 * The one idea: a folder is opened once and its files relative to it,
 * never through a symlink, the folder's path included (one could lead
 * out of the adapter roots, or to another tenant's adapter, after the
 * catalog judged the path) and never a FIFO or a device (a read that
 * blocks or never ends); each is read once, whole, into a buffer of the
 * size fstat() gave, within a bound, and everything after it (the parse,
 * the sha256 pin, the page images) looks at that buffer only. A file
 * truncated or rewritten in place while it is read gives an error (a
 * short read) or the bytes as read, never a fault in a mapping that
 * kills the engine; and the bytes the pin approved are those served.
 */

#define _GNU_SOURCE             /* O_PATH */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "slora_adapter.h"
#include "slora_sha256.h"


static int slora_adapter_file_open(int *dfd, const char *dir,
    const char *file, struct stat *sb, slora_err_t *err);
static int slora_adapter_dir_open(const char *dir, const char *file,
    slora_err_t *err);
static const char *slora_adapter_file_kind(mode_t mode);


int
slora_adapter_file_read(int *dfd, const char *dir, const char *file,
    size_t max, uint8_t **buf, size_t *len, slora_err_t *err)
{
    int           fd;
    size_t        size, n;
    ssize_t       r;
    uint8_t      *p;
    struct stat   sb;

    *buf = NULL;
    *len = 0;

    fd = slora_adapter_file_open(dfd, dir, file, &sb, err);
    if (fd == -1) {
        return SLORA_ERROR;
    }

    if ((uint64_t) sb.st_size > max) {
        close(fd);
        return slora_err_set(err, SLORA_ERROR, "%s/%s: %lld bytes, more "
                             "than the %zu it may take", dir, file,
                             (long long) sb.st_size, max);
    }

    size = (size_t) sb.st_size;

    p = malloc(size + 1);
    if (p == NULL) {
        close(fd);
        return slora_err_set(err, SLORA_ERROR, "%s/%s: no memory for %zu "
                             "bytes", dir, file, size);
    }

    for (n = 0; n < size; n += (size_t) r) {
        r = pread(fd, p + n, size - n, (off_t) n);

        if (r == -1 && errno == EINTR) {
            r = 0;
            continue;
        }

        if (r == -1) {
            slora_err_set(err, SLORA_ERROR, "%s/%s: %s", dir, file,
                          strerror(errno));
            goto failed;
        }

        if (r == 0) {
            slora_err_set(err, SLORA_ERROR, "%s/%s: %zu bytes where there "
                          "were %zu: cut short while it was read", dir, file,
                          n, size);
            goto failed;
        }
    }

    close(fd);

    p[size] = '\0';
    *buf = p;
    *len = size;

    return SLORA_OK;

failed:

    close(fd);
    free(p);

    return SLORA_ERROR;
}


int
slora_adapter_file_sha256(const char *dir, const char *file,
    char hex[SLORA_SHA256_HEX], slora_err_t *err)
{
    int          fd, dfd, rc;
    char         path[SLORA_ADAPTER_PATH_LEN];
    struct stat  sb;

    dfd = -1;
    fd = slora_adapter_file_open(&dfd, dir, file, &sb, err);

    if (dfd != -1) {
        close(dfd);
    }

    if (fd == -1) {
        return SLORA_ERROR;
    }

    snprintf(path, sizeof(path), "%s/%s", dir, file);
    rc = slora_sha256_fd(fd, path, hex, err);
    close(fd);

    return rc;
}


/*
 * dir/file opened for reading: dir itself at the first call (*dfd -1),
 * then the file relative to it, not followed if a symlink, not waited
 * for if a FIFO; SLORA_ERROR unless it is a regular file. The errors
 * name dir/file, even where it is the folder that cannot be opened.
 */
static int
slora_adapter_file_open(int *dfd, const char *dir, const char *file,
    struct stat *sb, slora_err_t *err)
{
    int  fd;

    if (*dfd == -1) {
        *dfd = slora_adapter_dir_open(dir, file, err);
        if (*dfd == -1) {
            return -1;
        }
    }

    fd = openat(*dfd, file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd == -1) {
        if (errno == ELOOP) {
            slora_err_set(err, SLORA_ERROR, "%s/%s is a symlink: refused "
                          "(an adapter's files must be regular files in "
                          "its folder)", dir, file);

        } else {
            slora_err_set(err, SLORA_ERROR, "%s/%s: %s", dir, file,
                          strerror(errno));
        }

        return -1;
    }

    if (fstat(fd, sb) == -1) {
        slora_err_set(err, SLORA_ERROR, "%s/%s: %s", dir, file,
                      strerror(errno));
        close(fd);
        return -1;
    }

    if (!S_ISREG(sb->st_mode)) {
        slora_err_set(err, SLORA_ERROR, "%s/%s is not a regular file (%s): "
                      "refused", dir, file,
                      slora_adapter_file_kind(sb->st_mode));
        close(fd);
        return -1;
    }

    return fd;
}


/*
 * The folder dir opened following no symlink (openat2's
 * RESOLVE_NO_SYMLINKS; on a kernel without it, one name at a time from
 * "/" or the working directory, O_NOFOLLOW each): the catalog confined
 * the folder by its realpath, which holds none, and a link put in its path
 * since (the folder renamed away and a link to another put in its
 * place, between the registration and a load hours later) would lead
 * where the check never looked. The names before the last are opened
 * O_PATH, so a folder on the way needs only search permission, as for
 * open(dir). -1 with err set where it cannot be opened so.
 */
static int
slora_adapter_dir_open(const char *dir, const char *file, slora_err_t *err)
{
    int              fd, next, last, e;
    char             name[NAME_MAX + 1];
    size_t           n;
    const char      *p, *end;
    struct stat      sb;
    struct open_how  how;

    /* at once where the kernel has openat2 (5.6): what the walk below
     * does, an automounted folder on the way mounted as open() mounts
     * it; a link found (ELOOP) is walked to, to be named */
    memset(&how, 0, sizeof(how));
    how.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC;
    how.resolve = RESOLVE_NO_SYMLINKS;

    fd = (int) syscall(SYS_openat2, AT_FDCWD, dir, &how, sizeof(how));

    if (fd != -1) {
        return fd;
    }

    /* ENOSYS: an older kernel; EPERM: a container's seccomp that knows
     * no openat2 */
    if (errno != ELOOP && errno != ENOSYS && errno != EPERM) {
        slora_err_set(err, SLORA_ERROR, "%s/%s: %s", dir, file,
                      strerror(errno));
        return -1;
    }

    fd = dir[0] == '/' ? open("/", O_PATH | O_DIRECTORY | O_CLOEXEC)
                       : AT_FDCWD;

    if (fd == -1) {
        slora_err_set(err, SLORA_ERROR, "%s/%s: %s", dir, file,
                      strerror(errno));
        return -1;
    }

    for (p = dir; /* void */; p = end) {
        while (*p == '/') {
            p++;
        }

        end = p + strcspn(p, "/");
        n = (size_t) (end - p);
        last = end[strspn(end, "/")] == '\0';

        if (n == 0 && fd != AT_FDCWD) {
            /* "/": the root itself, read as a folder */
            next = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            e = errno;
            close(fd);
            fd = next;
            errno = e;
            break;
        }

        if (n == 0 || n > NAME_MAX) {
            e = n == 0 ? ENOENT : ENAMETOOLONG;
            if (fd != AT_FDCWD) {
                close(fd);
            }
            fd = -1;
            errno = e;
            break;
        }

        memcpy(name, p, n);
        name[n] = '\0';

        next = openat(fd, name, (last ? O_RDONLY : O_PATH) | O_DIRECTORY
                                | O_NOFOLLOW | O_CLOEXEC);
        e = errno;

        if (next == -1 && (e == ELOOP || e == ENOTDIR)
            && fstatat(fd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0
            && S_ISLNK(sb.st_mode))
        {
            if (last) {
                slora_err_set(err, SLORA_ERROR, "%s is a symlink: refused "
                              "(an adapter's folder is opened along its own "
                              "path, through no link)", dir);

            } else {
                slora_err_set(err, SLORA_ERROR, "%s: %.*s is a symlink: "
                              "refused (an adapter's folder is opened along "
                              "its own path, through no link)", dir,
                              (int) (end - dir), dir);
            }

            if (fd != AT_FDCWD) {
                close(fd);
            }
            return -1;
        }

        if (fd != AT_FDCWD) {
            close(fd);
        }

        fd = next;
        errno = e;

        if (fd == -1 || last) {
            break;
        }
    }

    if (fd == -1) {
        slora_err_set(err, SLORA_ERROR, "%s/%s: %s", dir, file,
                      strerror(errno));
    }

    return fd;
}


static const char *
slora_adapter_file_kind(mode_t mode)
{
    if (S_ISDIR(mode)) {
        return "a folder";
    }

    if (S_ISFIFO(mode)) {
        return "a FIFO";
    }

    if (S_ISCHR(mode) || S_ISBLK(mode)) {
        return "a device";
    }

    if (S_ISSOCK(mode)) {
        return "a socket";
    }

    return "not a file";
}
