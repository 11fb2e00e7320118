// result: Result<T, E>, the value-or-error of an operation, shaped like
// std::expected: has_value() (and ok()), operator bool, value(), error(); an
// error is built from E itself when that cannot be mistaken for a value
// (return Error{errno, "..."}), otherwise with fail(e).
// Refusals of the client are Reply values, not Results; an internal error is
// an exception, which main logs as event=fatal (exit status 70; in serve
// mode the client gets 421 4.3.0 when it can be told).
#pragma once

#include <cerrno>
#include <concepts>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

namespace smtpspool {

// A local failure, with errno when the system reported one.
struct Error {
    int errnum = 0;
    std::string message;
};

// The Error of a failed system call: errno, and "WHAT: its description".
inline Error sys_error(const std::string& what)
{
    int e = errno;
    return Error{e, what + ": " + std::strerror(e)};
}

// An error on its way into a Result (std::unexpected).
template <typename E>
struct Failure {
    E error;
};

template <typename E>
Failure<std::decay_t<E>> fail(E&& error)
{
    return {std::forward<E>(error)};
}

template <typename T, typename E = Error>
class [[nodiscard]] Result {
public:
    Result(T value) : m_v(std::in_place_index<0>, std::move(value)) {}
    // From E directly only when no E is also a T (Result<std::string,
    // std::string> or Result<Peer, int> need fail()).
    Result(E error)
        requires(!std::convertible_to<E, T> && !std::convertible_to<T, E>)
        : m_v(std::in_place_index<1>, std::move(error))
    {
    }
    template <typename F>
    Result(Failure<F> f) : m_v(std::in_place_index<1>, std::move(f.error))
    {
    }
    bool has_value() const { return m_v.index() == 0; }
    bool ok() const { return has_value(); }
    explicit operator bool() const { return has_value(); }
    T& value() { return std::get<0>(m_v); }
    const T& value() const { return std::get<0>(m_v); }
    T& operator*() { return value(); }
    const T& operator*() const { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    E& error() { return std::get<1>(m_v); }
    const E& error() const { return std::get<1>(m_v); }

private:
    std::variant<T, E> m_v;
};

template <typename E>
class [[nodiscard]] Result<void, E> {
public:
    Result() = default;
    Result(E error) : m_error(std::move(error)), m_ok(false) {}
    template <typename F>
    Result(Failure<F> f) : m_error(std::move(f.error)), m_ok(false)
    {
    }
    bool has_value() const { return m_ok; }
    bool ok() const { return m_ok; }
    explicit operator bool() const { return m_ok; }
    E& error() { return m_error; }
    const E& error() const { return m_error; }

private:
    E m_error{};
    bool m_ok = true;
};

} // namespace smtpspool
