#include "common/curl_library.hpp"

#include <dlfcn.h>

#include <mutex>

namespace mailcanary {
namespace {

template <typename Function>
bool find(void* library, const char* name, Function& function, std::string& error) {
    function = reinterpret_cast<Function>(::dlsym(library, name));
    if (function == nullptr) error = std::string("libcurl has no ") + name;
    return function != nullptr;
}

}  // namespace

std::optional<CurlLibrary> load_curl_library(const char* soname, std::string& error) {
    void* library = ::dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (library == nullptr) {
        const char* reason = ::dlerror();
        error = std::string("cannot load libcurl (") + (reason != nullptr ? reason : soname) +
                "): the OAuth refresh-token flow needs it (Debian: apt install libcurl4)";
        return std::nullopt;
    }
    CurlLibrary curl{};
    const bool found = find(library, "curl_global_init", curl.global_init, error) &&
                       find(library, "curl_easy_init", curl.easy_init, error) &&
                       find(library, "curl_easy_cleanup", curl.easy_cleanup, error) &&
                       find(library, "curl_easy_escape", curl.easy_escape, error) &&
                       find(library, "curl_free", curl.free_memory, error) &&
                       find(library, "curl_easy_setopt", curl.easy_setopt, error) &&
                       find(library, "curl_easy_perform", curl.easy_perform, error) &&
                       find(library, "curl_easy_strerror", curl.easy_strerror, error) &&
                       find(library, "curl_easy_getinfo", curl.easy_getinfo, error);
    if (!found) {
        ::dlclose(library);
        return std::nullopt;
    }
    return curl;
}

const CurlLibrary* curl_library(std::string& error) {
    static std::once_flag once;
    static std::optional<CurlLibrary> library;
    static std::string load_error;
    std::call_once(once, [] {
        library = load_curl_library("libcurl.so.4", load_error);
        // Thread-safe in libcurl >= 7.84 (Debian 12 has 7.88), so it may run on a worker thread.
        if (library && library->global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            library.reset();
            load_error = "libcurl's global initialisation failed";
        }
    });
    if (!library) error = load_error;
    return library ? &*library : nullptr;
}

}  // namespace mailcanary
