/* loss.c: losses composed from ops, so they run on every backend. */
#include "backend/backend.h"
#include "core/ops.h"

enum seg_status seg_cross_entropy(const struct seg_tensor *logits, const struct seg_tensor *labels,
                                  const struct seg_tensor *weights, int ignore_index, bool empty_zero,
                                  struct seg_tensor **loss, struct seg_tensor **wsum)
{
    struct seg_tensor *terms = NULL, *sums = NULL, *num = NULL, *w = NULL, *tiny = NULL;
    *loss = NULL;
    *wsum = NULL;
    enum seg_status st = seg_cross_entropy_terms(logits, labels, weights, ignore_index, &terms);
    if (!st)
        st = seg_reduce(SEG_REDUCE_SUM, terms, 1, false, &sums); /* [2] */
    if (!st)
        st = seg_slice(sums, 0, 0, 1, &num);
    if (!st)
        st = seg_slice(sums, 0, 1, 1, empty_zero ? &w : wsum);
    if (!st && empty_zero)
        st = seg_tensor_new_like(w, &tiny);
    if (!st && empty_zero)
        st = seg_fill(tiny, weights ? 1e-12f : 1.0f); /* dloss / tiny stays finite */
    if (!st && empty_zero)
        st = seg_binary(SEG_BINARY_MAX, w, tiny, wsum);
    /* An all-ignored batch gives 0/0 = NaN, as PyTorch does (0 with empty_zero). */
    if (!st)
        st = seg_binary(SEG_BINARY_DIV, num, *wsum, loss);
    if (st) {
        seg_tensor_free(*wsum);
        *wsum = NULL;
    }
    seg_tensor_free(terms);
    seg_tensor_free(sums);
    seg_tensor_free(num);
    seg_tensor_free(w);
    seg_tensor_free(tiny);
    return st;
}

enum seg_status seg_cross_entropy_grad(const struct seg_tensor *logits,
                                       const struct seg_tensor *labels,
                                       const struct seg_tensor *weights, int ignore_index,
                                       const struct seg_tensor *wsum,
                                       const struct seg_tensor *dloss,
                                       struct seg_tensor **dlogits)
{
    struct seg_tensor *scale = NULL;
    enum seg_status st = seg_binary(SEG_BINARY_DIV, dloss, wsum, &scale);
    if (!st)
        st = seg_cross_entropy_bwd(logits, labels, weights, scale, ignore_index, dlogits);
    seg_tensor_free(scale);
    return st;
}
