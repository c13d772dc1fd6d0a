/* cpu.h: shared helpers of the cpu reference backend. */
#ifndef SEGDA_CPU_H
#define SEGDA_CPU_H

#include "backend/backend.h"

static inline void *cpu_ptr(const struct seg_tensor *t)
{
    return t ? (char *)t->buf.handle + t->offset : NULL;
}
#define CPU_F32(t) ((float *)cpu_ptr(t))
#define CPU_I32(t) ((int32_t *)cpu_ptr(t))
#define CPU_U32(t) ((uint32_t *)cpu_ptr(t))

/* Kernels, one family per file. */
#define CPU_KERNEL(name) enum seg_status name(struct seg_backend *be, const struct seg_op_args *a)
CPU_KERNEL(cpu_fill);
CPU_KERNEL(cpu_cast);
CPU_KERNEL(cpu_binary);
CPU_KERNEL(cpu_expand);
CPU_KERNEL(cpu_unary);
CPU_KERNEL(cpu_unary_bwd);
CPU_KERNEL(cpu_where);
CPU_KERNEL(cpu_rng_uniform);
CPU_KERNEL(cpu_reduce);
CPU_KERNEL(cpu_argreduce);
CPU_KERNEL(cpu_softmax);
CPU_KERNEL(cpu_softmax_bwd);
CPU_KERNEL(cpu_cumsum);
CPU_KERNEL(cpu_sort);
CPU_KERNEL(cpu_cross_entropy);
CPU_KERNEL(cpu_cross_entropy_bwd);
CPU_KERNEL(cpu_matmul);
CPU_KERNEL(cpu_im2col);
CPU_KERNEL(cpu_col2im);
CPU_KERNEL(cpu_batchnorm_stats);
CPU_KERNEL(cpu_batchnorm);
CPU_KERNEL(cpu_batchnorm_bwd);
CPU_KERNEL(cpu_maxpool2d);
CPU_KERNEL(cpu_maxpool2d_bwd);
CPU_KERNEL(cpu_resize_bilinear);
CPU_KERNEL(cpu_resize_bilinear_bwd);
CPU_KERNEL(cpu_resize_nearest);
CPU_KERNEL(cpu_one_hot);
CPU_KERNEL(cpu_gather);
CPU_KERNEL(cpu_scatter_add);
CPU_KERNEL(cpu_slice);
CPU_KERNEL(cpu_slice_assign);
CPU_KERNEL(cpu_permute);
CPU_KERNEL(cpu_sgd_step);
CPU_KERNEL(cpu_adam_step);
CPU_KERNEL(cpu_nonfinite_any);
CPU_KERNEL(cpu_peak_fma);
CPU_KERNEL(cpu_conv2d_direct);

#endif
