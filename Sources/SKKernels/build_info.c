// The commit a binary was built from. scripts/build.sh writes sk_commit.h (git-ignored) with
// SK_COMMIT defined; a build made any other way says "unknown". The header, not a -D flag, so a
// new commit recompiles this one file instead of every module.
#include "sk_kernels.h"
#if __has_include("sk_commit.h")
#include "sk_commit.h"
#endif
#ifndef SK_COMMIT
#define SK_COMMIT "unknown"
#endif
const char *sk_build_commit(void) { return SK_COMMIT; }
