/* Force-included (-include) by the manylinux toolchain files: binds the libm functions whose
 * symbol versions glibc 2.27 (float) and 2.29 (double) renewed to their original versions, so a
 * module built against glibc 2.31 also loads on older systems. The old versions are the same
 * functions behind glibc's earlier error-handling wrapper; the results are identical. */
#ifndef MUSGEN_GLIBC_COMPAT_H
#define MUSGEN_GLIBC_COMPAT_H
#include <features.h>
#if defined(__GLIBC__) && !defined(__CUDA_ARCH__) /* host code only (nvcc: host pass) */
#if defined(__x86_64__)
#define MUSGEN_GLIBC_BASE "GLIBC_2.2.5"
#elif defined(__aarch64__)
#define MUSGEN_GLIBC_BASE "GLIBC_2.17"
#endif
#ifdef MUSGEN_GLIBC_BASE
#define MUSGEN_OLD_SYMBOL(name) __asm__(".symver " #name "," #name "@" MUSGEN_GLIBC_BASE)
MUSGEN_OLD_SYMBOL(exp);
MUSGEN_OLD_SYMBOL(exp2);
MUSGEN_OLD_SYMBOL(log);
MUSGEN_OLD_SYMBOL(log2);
MUSGEN_OLD_SYMBOL(pow);
MUSGEN_OLD_SYMBOL(expf);
MUSGEN_OLD_SYMBOL(exp2f);
MUSGEN_OLD_SYMBOL(logf);
MUSGEN_OLD_SYMBOL(log2f);
MUSGEN_OLD_SYMBOL(powf);
MUSGEN_OLD_SYMBOL(sinf);
MUSGEN_OLD_SYMBOL(cosf);
MUSGEN_OLD_SYMBOL(sincosf);
#undef MUSGEN_OLD_SYMBOL
#endif
#endif
#endif
