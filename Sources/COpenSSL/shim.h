// The system OpenSSL (libssl-dev, 1.1.1 or 3.x) for the HTTP server's TLS. The small inline functions stand for
// OpenSSL's function-like macros, which Swift cannot import.
#ifndef SRIOVD_COPENSSL_SHIM_H
#define SRIOVD_COPENSSL_SHIM_H

#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/// A server context's protocol settings: TLS 1.2 and 1.3 only, no renegotiation (RFC 5746 attacks; TLS 1.3 has
/// none), no compression (CRIME); writes may be partial and may be retried from a moved buffer, as a non-blocking
/// event loop needs. Returns 1 on success.
static inline int sriovd_SSL_CTX_configure_server(SSL_CTX *ctx) {
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) return 0;
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_clear_options(ctx, SSL_OP_ALLOW_CLIENT_RENEGOTIATION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    return 1;
}

static inline const STACK_OF(GENERAL_NAME) *sriovd_subject_alt_names(X509 *cert) {
    return X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
}

static inline int sriovd_general_names_count(const STACK_OF(GENERAL_NAME) *names) {
    return sk_GENERAL_NAME_num(names);
}

static inline const GENERAL_NAME *sriovd_general_name_at(const STACK_OF(GENERAL_NAME) *names, int index) {
    return sk_GENERAL_NAME_value(names, index);
}

static inline void sriovd_general_names_free(const STACK_OF(GENERAL_NAME) *names) {
    GENERAL_NAMES_free((STACK_OF(GENERAL_NAME) *)names);
}

static inline void sriovd_SSL_CTX_set_client_CA_file(SSL_CTX *ctx, const char *path) {
    SSL_CTX_set_client_CA_list(ctx, SSL_load_client_CA_file(path));
}

#endif
