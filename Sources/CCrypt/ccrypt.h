// crypt(3) from the system's libcrypt (libxcrypt on Debian: yescrypt, SHA-512/256-crypt,
// bcrypt, MD5-crypt, DES), for `smtpguard audit-passwords`.
#include <crypt.h>
