// sd_notify(3) without libsystemd: one datagram to $NOTIFY_SOCKET.
#pragma once
#ifdef __cplusplus
extern "C" {
#endif
// Sends `state` (e.g. "READY=1\nSTATUS=training") to the socket named by `socket_path`
// (a filesystem path, or "@name" for the abstract namespace).
// Returns 1 when sent, 0 when socket_path is NULL/empty (not under systemd), -errno on failure.
int connito_sd_notify(const char* socket_path, const char* state, unsigned long state_len);
#ifdef __cplusplus
}
#endif
