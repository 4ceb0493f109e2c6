// Node cannot open AF_UNIX datagram sockets, so the supervisor's sd_notify lives here.
#include "sd_notify.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int connito_sd_notify(const char* socket_path, const char* state, unsigned long state_len) {
  if (socket_path == NULL || socket_path[0] == '\0') return 0;
  size_t path_len = strlen(socket_path);
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  if (path_len >= sizeof(addr.sun_path)) return -ENAMETOOLONG;
  memcpy(addr.sun_path, socket_path, path_len);
  socklen_t addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + path_len);
  if (socket_path[0] == '@') {
    addr.sun_path[0] = '\0';  // abstract namespace: no trailing NUL is part of the name
  } else {
    addr_len += 1;
  }
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  ssize_t sent = sendto(fd, state, state_len, MSG_NOSIGNAL, (const struct sockaddr*)&addr, addr_len);
  int err = errno;
  close(fd);
  if (sent < 0) return -err;
  if ((unsigned long)sent != state_len) return -EMSGSIZE;
  return 1;
}
