// Tests of the Authentication-Results: filter (RFC 8601 §5).
#include "smtp/auth_results.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace smtpspool;

namespace {

struct Filtered {
    std::string out;
    std::size_t removed;
};

Filtered filter(std::string_view in, std::size_t step = 0, std::string id = "mx.test", std::size_t max = 64 << 10)
{
    AuthResultsFilter f(std::move(id), max);
    Filtered r;
    if (step == 0) {
        step = in.size() + 1;
    }
    for (std::size_t i = 0; i < in.size(); i += step) {
        f.feed(in.substr(i, step), r.out);
    }
    f.finish(r.out);
    r.removed = f.removed();
    return r;
}

// The same at every chunking.
Filtered filter_all_ways(std::string_view in, std::string id = "mx.test")
{
    Filtered whole = filter(in, 0, id);
    for (std::size_t step : {1, 2, 3, 5, 11}) {
        Filtered parts = filter(in, step, id);
        CHECK(parts.out == whole.out);
        CHECK(parts.removed == whole.removed);
    }
    return whole;
}

} // namespace

TEST_CASE("authserv-id: the first value after comments and white space")
{
    CHECK(authserv_id_of(" mx.test; spf=pass") == "mx.test");
    CHECK(authserv_id_of("mx.test 1; none") == "mx.test");
    CHECK(authserv_id_of(" (a comment (nested) \\) ) MX.Test;") == "MX.Test");
    CHECK(authserv_id_of("\r\n\tmx.test;") == "mx.test");
    CHECK(authserv_id_of(" \"mx.test\"; x") == "mx.test");
    CHECK(authserv_id_of(" \"mx\\.test\"; x") == "mx.test");
    CHECK(authserv_id_of(" ; spf=pass") == std::nullopt);
    CHECK(authserv_id_of("   ") == std::nullopt);
}

TEST_CASE("A-R filter: a field claiming our authserv-id goes, any case, folded or not; others stay")
{
    const std::string in = "Received: from x\r\n"
                           "Authentication-Results: mx.test; spf=pass smtp.mailfrom=a@b\r\n"
                           "authentication-results : (forged) MX.TEST;\r\n"
                           "\tdkim=pass header.d=b\r\n"
                           "Authentication-Results: upstream.example; spf=fail\r\n"
                           "Authentication-Results: mx.test.evil; spf=pass\r\n"
                           "Authentication-Results-X: mx.test\r\n"
                           "X-Authentication-Results: mx.test\r\n"
                           "Subject: s\r\n"
                           "\r\n"
                           "Authentication-Results: mx.test; in the body\r\n";
    Filtered f = filter_all_ways(in);
    CHECK(f.removed == 2);
    CHECK(f.out == "Received: from x\r\n"
                   "Authentication-Results: upstream.example; spf=fail\r\n"
                   "Authentication-Results: mx.test.evil; spf=pass\r\n"
                   "Authentication-Results-X: mx.test\r\n"
                   "X-Authentication-Results: mx.test\r\n"
                   "Subject: s\r\n"
                   "\r\n"
                   "Authentication-Results: mx.test; in the body\r\n");
}

TEST_CASE("A-R filter: the first and the last field, a message with no body, LF line ends")
{
    CHECK(filter_all_ways("Authentication-Results: mx.test; x\r\nA: b\r\n\r\nbody").out == "A: b\r\n\r\nbody");
    CHECK(filter_all_ways("A: b\r\nAuthentication-Results: mx.test;\r\n x\r\n").out == "A: b\r\n");
    CHECK(filter_all_ways("A: b\r\nAuthentication-Results: mx.test;").out == "A: b\r\n");
    CHECK(filter_all_ways("A: b\nAuthentication-Results: mx.test;\n\nbody\n").out == "A: b\n\nbody\n");
    CHECK(filter_all_ways("Authentication-Results: other; x\r\n").out == "Authentication-Results: other; x\r\n");
    const std::string odd = "\r\rA: b\r\n \r\n\r\n";
    CHECK(filter_all_ways(odd).out == odd);
}

TEST_CASE("A-R filter: a field held past the limit is decided on what is held")
{
    // A long comment before the id: not known in time, taken out.
    std::string hidden = "Authentication-Results: (" + std::string(200, 'c') + ") mx.test; x\r\nA: b\r\n\r\n";
    Filtered f = filter(hidden, 7, "mx.test", 64);
    CHECK(f.out == "A: b\r\n\r\n");
    CHECK(f.removed == 1);
    // Another's id, known in time: kept whole, however long.
    std::string other = "Authentication-Results: other.example; " + std::string(200, 'r') + "\r\n\t" +
                        std::string(100, 's') + "\r\nA: b\r\n\r\n";
    Filtered g = filter(other, 7, "mx.test", 64);
    CHECK(g.out == other);
    CHECK(g.removed == 0);
    // Ours, long: the whole field goes, continuation lines and all.
    std::string ours = "Authentication-Results: mx.test; " + std::string(200, 'r') + "\r\n\t" +
                       std::string(100, 's') + "\r\nA: b\r\n\r\n";
    CHECK(filter(ours, 5, "mx.test", 64).out == "A: b\r\n\r\n");
}
