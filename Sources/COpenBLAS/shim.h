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

#endif
