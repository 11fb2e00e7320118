// terminal: the locale's character set, asked once.
#include "cli/terminal.hpp"

#include <clocale>
#include <cstring>
#include <langinfo.h>
#include <string>

namespace smtpspool {

bool utf8_locale()
{
    static const bool utf8 = [] {
        const char* current = std::setlocale(LC_CTYPE, nullptr);
        const std::string saved = current != nullptr ? current : "C";
        bool yes = false;
        if (std::setlocale(LC_CTYPE, "") != nullptr) {
            const char* codeset = ::nl_langinfo(CODESET);
            yes = codeset != nullptr && std::strcmp(codeset, "UTF-8") == 0;
        }
        std::setlocale(LC_CTYPE, saved.c_str());
        return yes;
    }();
    return utf8;
}

std::unique_ptr<LogSink> open_log(LogTarget target, LogFormat format)
{
    return make_log_sink(target, target == LogTarget::stderr_ && utf8_locale(), format);
}

} // namespace smtpspool
