// atomic_file: the one routine that makes a file appear whole or not at all:
// create a temporary name exclusively (O_EXCL|O_NOFOLLOW), fill it, fsync it,
// close it, rename it to its final name, fsync the final directory. runq's
// rewrite of envelope.json and the maildir deliverer use it; the spool's
// commit renames a whole directory instead (spool/spool.cpp).
#pragma once

#include "base/fs.hpp"
#include "base/result.hpp"

#include <functional>
#include <string>

namespace smtpspool {

struct AtomicTarget {
    int temp_dir = -1;      // directory descriptor of the temporary name
    std::string temp_name;  // created exclusively; a stale one is unlinked first when `replace_stale`
    int final_dir = -1;     // directory descriptor of the final name (may be temp_dir)
    std::string final_name; // replaced if present (rename(2))
    std::string shown;      // how errors name the file
    bool replace_stale = false;
    mode_t mode = 0600;
};

// `fill` writes the content through the descriptor it is given (with
// write_all, say). On any failure the temporary name is removed and the final
// name is untouched; the error names the step. Once the rename has happened a
// failed fsync of the directory is still an error (the file may not survive a
// crash), but the file is in place.
Result<void> write_file_atomically(Fs& fs, const AtomicTarget& target, const std::function<Result<void>(int)>& fill);

// Writes all of `bytes` through fs (EINTR retried by Fs); errno EIO for a
// write that makes no progress.
Result<void> write_all(Fs& fs, int fd, std::string_view bytes, const std::string& shown);

} // namespace smtpspool
