/* gemm.cu — every projection of the model is one call here: Y = X·Wᵀ (or
 * Y += X·Wᵀ, which folds the residual additions into the output and FFN
 * products), with X [M][K] row-major activations, W a PyTorch Linear weight
 * [N][K] row-major, Y [M][N] fp32.
 *
 * cuBLAS is column-major, so the product is computed as Yᵀ = W·Xᵀ: the
 * row-major W is a column-major K×N matrix used transposed, the row-major X
 * a column-major K×M matrix used as is, and the row-major Y [M][ldy] is the
 * column-major N×M result with leading dimension ldy.
 *
 * bf16 mode: A and B bf16, C fp32, CUBLAS_COMPUTE_32F (tensor cores, fp32
 * accumulation).  fp32 mode: everything fp32 with
 * CUBLAS_COMPUTE_32F_PEDANTIC, so no TF32 rounding can creep in. */
#include "kernels/cuda_internal.cuh"

int cu_gemm(cu_ctx *c, int M, int N, int K, const void *X, int ldx, const void *W, float *Y,
            int ldy, int accumulate, rwkv_error *err)
{
    if (M <= 0 || N <= 0)
        return 0;
    const float one = 1.0f, zero = 0.0f;
    cudaDataType_t ab = c->prec == CU_BF16 ? CUDA_R_16BF : CUDA_R_32F;
    cublasComputeType_t ct =
        c->prec == CU_BF16 ? CUBLAS_COMPUTE_32F : CUBLAS_COMPUTE_32F_PEDANTIC;
    CUBLAS_TRY(c->cublas->gemm_ex(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &one, W, ab, K, X,
                                  ab,
                                  ldx, accumulate ? &one : &zero, Y, CUDA_R_32F, ldy, ct,
                                  CUBLAS_GEMM_DEFAULT));
    return 0;
}
