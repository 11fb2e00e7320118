// terminal: what the command-line tools print for the reader's locale: the
// character set of LC_ALL/LC_CTYPE/LANG, and the log sink that follows it.
#pragma once

#include "base/log.hpp"

#include <memory>

namespace smtpspool {

// True when the environment's LC_CTYPE locale (LC_ALL, LC_CTYPE, LANG) exists
// and its character set is UTF-8. Found once, by setlocale(LC_CTYPE, "") and
// nl_langinfo(CODESET); the program's own locale is put back to what it was,
// so that nothing else changes behaviour.
bool utf8_locale();

// make_log_sink for `target` in `format`; standard error keeps UTF-8 when
// utf8_locale(). The locale is looked at only for a log on standard error.
std::unique_ptr<LogSink> open_log(LogTarget target, LogFormat format);

} // namespace smtpspool
