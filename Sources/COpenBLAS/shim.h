#ifndef ISOSWEEP_COPENBLAS_SHIM_H
#define ISOSWEEP_COPENBLAS_SHIM_H

#include <cblas.h>
#include <stddef.h>

// Debian's OpenBLAS ships LAPACK inside libopenblas but no LAPACKE, so the few Fortran routines
// the training core needs are declared here (column-major, arguments by pointer, hidden string
// lengths last as gfortran passes them).

/// Minimum-norm least squares by divide-and-conquer SVD.
void dgelsd_(const int *m, const int *n, const int *nrhs, double *a, const int *lda, double *b,
             const int *ldb, double *s, const double *rcond, int *rank, double *work,
             const int *lwork, int *iwork, int *info);

/// Singular values (and optionally vectors) by divide and conquer.
void dgesdd_(const char *jobz, const int *m, const int *n, double *a, const int *lda, double *s,
             double *u, const int *ldu, double *vt, const int *ldvt, double *work,
             const int *lwork, int *iwork, int *info, size_t jobz_len);

// CPUID and XGETBV, to tell which OpenBLAS kernels this CPU can run (Swift has no inline
// assembly). Elsewhere than x86 they report nothing, and OpenBLAS's own choice stands.
#if defined(__x86_64__)
#include <cpuid.h>

/// Registers eax, ebx, ecx, edx of CPUID leaf `leaf`, sub-leaf `subleaf`; 0 where the leaf
/// does not exist.
static inline int isosweep_cpuid(unsigned leaf, unsigned subleaf, unsigned registers[4]) {
    return __get_cpuid_count(leaf, subleaf, &registers[0], &registers[1], &registers[2], &registers[3]);
}

/// XCR0: which register states the operating system saves (AVX needs bits 1-2, AVX-512 5-7).
/// Only call it where CPUID.1:ECX.OSXSAVE (bit 27) is set.
static inline unsigned long long isosweep_xcr0(void) {
    unsigned eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}
#else
static inline int isosweep_cpuid(unsigned leaf, unsigned subleaf, unsigned registers[4]) {
    (void)leaf; (void)subleaf; registers[0] = registers[1] = registers[2] = registers[3] = 0;
    return 0;
}
static inline unsigned long long isosweep_xcr0(void) { return 0; }
#endif

#endif
