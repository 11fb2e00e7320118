// main: parse the command line, run the command, map the outcome to an exit status.
#include "config.hpp"
#include "queue_commands.hpp"
#include "serve.hpp"

#include <exception>
#include <iostream>
#include <syslog.h>

int main(int argc, char** argv)
{
    using namespace smtpspool;
    try {
        auto parsed = parse_config(argc, argv);
        if (auto* exit = std::get_if<ConfigExit>(&parsed)) {
            bool serving = argc < 2 || std::string_view(argv[1]) == "serve" || argv[1][0] == '-';
            if (exit->status == k_exit_ok) {
                std::cout << exit->text << std::flush;
            } else if (serving) {
                return refuse_service(exit->text, exit->status);
            } else {
                std::cerr << exit->text;
            }
            return exit->status;
        }
        Config& config = std::get<Config>(parsed);
        switch (config.command) {
        case Subcommand::serve:
            return run_serve(std::move(config));
        case Subcommand::mailq:
            return run_mailq(config);
        case Subcommand::cat:
            return run_cat(config);
        case Subcommand::remove:
            return run_remove(config);
        case Subcommand::runq:
            return run_runq(std::move(config));
        case Subcommand::check_config:
            return run_check_config(std::move(config));
        }
    } catch (const std::exception& e) {
        ::openlog("smtpspool", LOG_PID, LOG_MAIL);
        ::syslog(LOG_ERR, "event=fatal reason=%s", e.what());
        return k_exit_software;
    }
    return k_exit_software;
}
