/*
 * slora_adapter_file.c: opens and reads the files of a PEFT folder into
 * memory the engine owns, and the sha256 the catalog pins an adapter's
 * weights with.
 *
 * The one idea: a folder is opened once and its files relative to it,
 * never through a symlink (one could lead out of the adapter roots, or
 * to another tenant's adapter) and never a FIFO or a device (a read that
 * blocks or never ends); each is read once, whole, into a buffer of the
 * size fstat() gave, within a bound, and everything after it (the parse,
 * the sha256 pin, the page images) looks at that buffer only. A file
 * truncated or rewritten in place while it is read gives an error (a
 * short read) or the bytes as read, never a fault in a mapping that
 * kills the engine; and the bytes the pin approved are those served.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "slora_adapter.h"
#include "slora_sha256.h"


static int slora_adapter_file_open(int *dfd, const char *dir,
    const char *file, struct stat *sb, slora_err_t *err);
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
        *dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (*dfd == -1) {
            slora_err_set(err, SLORA_ERROR, "%s/%s: %s", dir, file,
                          strerror(errno));
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
