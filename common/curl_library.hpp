// libcurl, loaded when the first OAuth token is requested rather than linked: it and the libraries
// it pulls in (GnuTLS, Kerberos, LDAP, libssh2, ...) were 4.3 MB of a 13 MB idle agent, and only
// the OAuth refresh-token flow uses it.
#pragma once

#include <curl/curl.h>

#include <optional>
#include <string>

namespace mailcanary {

// The few libcurl functions the token exchange calls.
struct CurlLibrary {
    CURLcode (*global_init)(long);
    CURL* (*easy_init)();
    void (*easy_cleanup)(CURL*);
    char* (*easy_escape)(CURL*, const char*, int);
    void (*free_memory)(void*);
    CURLcode (*easy_setopt)(CURL*, CURLoption, ...);
    CURLcode (*easy_perform)(CURL*);
    const char* (*easy_strerror)(CURLcode);
    CURLcode (*easy_getinfo)(CURL*, CURLINFO, ...);
};

// Loads the shared object `soname` and finds those functions; nullopt, with the reason in `error`,
// when either fails. The library stays loaded.
std::optional<CurlLibrary> load_curl_library(const char* soname, std::string& error);

// libcurl.so.4, loaded and globally initialised on the first call (thread-safe); later calls
// return the same. nullptr, with the reason in `error`, when it cannot be loaded.
const CurlLibrary* curl_library(std::string& error);

}  // namespace mailcanary
