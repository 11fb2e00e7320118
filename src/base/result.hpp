// result: Result<T>, the value-or-error of local operations (spool, files).
// Refusals of the client are Reply values, not Results; an internal error is an exception,
// which main logs as event=fatal (exit status 70).
#pragma once

#include <stdexcept>
#include <string>
#include <utility>
#include <variant>

namespace smtpspool {

// A local failure, with errno when the system reported one.
struct Error {
    int errnum = 0;
    std::string message;
};

template <typename T>
class [[nodiscard]] Result {
public:
    Result(T value) : m_v(std::move(value)) {}
    Result(Error error) : m_v(std::move(error)) {}
    bool ok() const { return m_v.index() == 0; }
    explicit operator bool() const { return ok(); }
    T& value() { return std::get<0>(m_v); }
    const T& value() const { return std::get<0>(m_v); }
    const Error& error() const { return std::get<1>(m_v); }

private:
    std::variant<T, Error> m_v;
};

template <>
class [[nodiscard]] Result<void> {
public:
    Result() = default;
    Result(Error error) : m_error(std::move(error)), m_ok(false) {}
    bool ok() const { return m_ok; }
    explicit operator bool() const { return m_ok; }
    const Error& error() const { return m_error; }

private:
    Error m_error;
    bool m_ok = true;
};

// A broken invariant or an unusable standard output: caught only in main.
class Fatal : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

} // namespace smtpspool
