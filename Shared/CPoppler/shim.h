#include <poppler.h>

// GLib's error and object types through plain functions Swift can call.
static inline int conduit_poppler_is_encrypted(const GError *error) {
    return error != NULL && error->domain == POPPLER_ERROR && error->code == POPPLER_ERROR_ENCRYPTED;
}
