/* OpenBLAS reference for bench/engine.mjs: GFLOP/s of cblas_sgemm (row-major, C = A·B) for each
 * M N K given on the command line, best of `reps` timed runs after one warm-up.
 * Build: cc -O2 engine_sgemm.c -lopenblas (libopenblas-dev). Output: one "sgemm M N K GFLOPS" line per size. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char** argv) {
  if (argc < 5 || (argc - 2) % 3 != 0) {
    fprintf(stderr, "usage: %s reps M N K [M N K ...]\n", argv[0]);
    return 2;
  }
  int reps = atoi(argv[1]);
  for (int a = 2; a + 2 < argc; a += 3) {
    int M = atoi(argv[a]), N = atoi(argv[a + 1]), K = atoi(argv[a + 2]);
    float* A = malloc(sizeof(float) * (size_t)M * K);
    float* B = malloc(sizeof(float) * (size_t)K * N);
    float* C = malloc(sizeof(float) * (size_t)M * N);
    for (size_t i = 0; i < (size_t)M * K; i++) A[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    for (size_t i = 0; i < (size_t)K * N; i++) B[i] = (float)((i * 40503u) % 1000) / 1000.0f - 0.5f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, A, K, B, N, 0.0f, C, N);
    double best = 1e30;
    int inner = 1;
    double flops = 2.0 * M * N * K;
    while (inner * flops < 2e9) inner *= 2; /* ~ a few hundred ms per timed run */
    for (int r = 0; r < reps; r++) {
      double t0 = now();
      for (int i = 0; i < inner; i++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, A, K, B, N, 0.0f, C, N);
      double dt = (now() - t0) / inner;
      if (dt < best) best = dt;
    }
    printf("sgemm %d %d %d %.2f\n", M, N, K, flops / best / 1e9);
    free(A);
    free(B);
    free(C);
  }
  return 0;
}
