/* plca.h: the building blocks of PLCA (pixel-level cycle association, Kang et al.,
 * NeurIPS 2020), implemented in plca_assoc.c and shared by the method (method_plca.c), the
 * loss-term tests and the test-time aggregation of evaluate.c.
 *
 * Maps are [N, C, P] (P = H*W pixels at stride 8). A similarity matrix is stored as
 * [N, P_key, P_query]: column q holds query pixel q's similarities to every key pixel
 * (one row of the paper's matrix), so that contrast normalization, softmax and argmax
 * run along axis 1. Everything is composed from device ops; the matrices are GEMMs. */
#ifndef SEGDA_PLCA_H
#define SEGDA_PLCA_H

#include "model/model.h"

enum seg_plca_metric {
    SEG_PLCA_COSINE, /* Eq. 1: cosine of L2-normalized features */
    SEG_PLCA_NEG_KL, /* Eq. 9: -KL(query || key) of probability maps, logs of p + 1e-10 */
};

/* sim[n, k, q] = D(query_q, key_k): query [N, C, Pq], key [N, C, Pk] -> [N, Pk, Pq]. */
enum seg_status seg_plca_similarity(struct seg_ag *ag, enum seg_plca_metric metric,
                                    struct seg_var *query, struct seg_var *key,
                                    struct seg_var **out);

/* Eq. 5-6 along axis 1 of x [N, R, Q]: (x - mean) / (unbiased std + 1e-10), with the
 * mean and std detached (constants for the gradient). R >= 2. */
enum seg_status seg_plca_contrast_norm(struct seg_ag *ag, struct seg_var *x, struct seg_var **out);

/* Eq. 7-8, spatial aggregation of x [N, C, P] within each image:
 * x_hat_j = (1 - alpha) x_j + alpha sum_j' w_jj' x_j', w_j. = softmax_j'(D(x_j, x_j')),
 * contrast-normalized first when norm. Gradients flow through x and through w. */
enum seg_status seg_plca_aggregate(struct seg_ag *ag, enum seg_plca_metric metric, struct seg_var *x,
                                   float alpha, bool norm, struct seg_var **out);

struct seg_plca_assoc_opts {
    enum seg_plca_metric metric;
    bool                 contrast_norm; /* Eq. 5 before the softmax */
    bool                 contrastive;   /* false: "Sim-PLCA", -D(i, j*) - D(j*, i*) directly */
};

/* Eq. 2-4 / 10: the cycle i -> j* = argmax_j D(s_i, t_j) -> i* = argmax_i' D(t_j*, s_i')
 * between source [N, C, Ps] and its paired target [N, C, Pt] (image n with image n);
 * loss = mean over the valid source pixels (label != 255 and label(i*) == label(i), over
 * the whole batch) of -log P_s->t(i, j*) - log P_t->s(j*, i*); 0 when none is valid.
 * labels: I32 [N, Ps]. nvalid (optional): a new [1] F32 device tensor, the valid count. */
enum seg_status seg_plca_association(struct seg_ag *ag, const struct seg_plca_assoc_opts *o,
                                     struct seg_var *src, struct seg_var *tgt,
                                     const struct seg_tensor *labels, struct seg_var **loss,
                                     struct seg_tensor **nvalid);

/* Eq. 13, one domain: u = -mean_c log_softmax(logits)_c per pixel (logits [N, K, ...]),
 * loss = mean over pixels of stopgrad(u / lambda - 1) * u. */
enum seg_status seg_plca_lsr(struct seg_ag *ag, struct seg_var *logits, float lambda,
                             struct seg_var **out);

/* The full objective (Eq. 14) of one source/target sub-batch. */
struct seg_plca_opts {
    bool  lovasz, fass, cass, lsr;      /* the terms (ablation switches) */
    bool  aggregation;                  /* spatial aggregation of the target (Eq. 7) */
    bool  pred_agg_norm;                /* contrast-normalize the probability self-similarity */
    bool  contrastive, contrast_norm;   /* see struct seg_plca_assoc_opts */
    bool  align_corners;                /* of the source logits' upsampling for CE / Lovasz */
    float lovasz_w;                     /* beta1 (times any multi-GPU scale) */
    float fass_w, cass_w;               /* beta2 of each association level */
    float lsr_w;                        /* beta3 (each LSR term) */
    float lambda, alpha;
};

enum seg_plca_term {
    SEG_PLCA_SEG, SEG_PLCA_LOVASZ, SEG_PLCA_FASS, SEG_PLCA_CASS, SEG_PLCA_LSR_S, SEG_PLCA_LSR_T,
    SEG_PLCA_NTERMS
};
extern const char *const seg_plca_term_names[SEG_PLCA_NTERMS];

struct seg_plca_terms {
    struct seg_var    *v[SEG_PLCA_NTERMS];  /* unweighted terms (kept past backward), NULL if off */
    struct seg_tensor *nvalid[2];           /* valid association counts (fass, cass); caller frees */
};

/* src/tgt logits [N, K, h, w] and layer4 features [N, C, h, w] at stride 8 (image n of
 * each domain paired); labels I32 [N, H, W] at the crop size:
 * total = CE(up(src)) + lovasz_w * Lov(softmax(up(src))) + fass_w * L_fass + cass_w * L_cass
 *         + lsr_w * (L_lsr(src) + L_lsr(tgt)),
 * up = bilinear upsampling to H x W; association labels = labels resized (nearest) to h x w. */
enum seg_status seg_plca_objective(struct seg_ag *ag, const struct seg_plca_opts *o,
                                   struct seg_var *src_logits, struct seg_var *src_feat,
                                   struct seg_var *tgt_logits, struct seg_var *tgt_feat,
                                   const struct seg_tensor *labels, struct seg_var **total,
                                   struct seg_plca_terms *terms);

/* Test-time aggregation (paper section 3.5): the layer4 features aggregated (cosine,
 * contrast-normalized, alpha) before the classifier; with probs_too (the released code)
 * the softmax outputs are aggregated as well (negative KL; contrast-normalized when
 * pred_norm). *out is [N, K, h, w]: logits, or probabilities when probs_too. */
enum seg_status seg_plca_predict(struct seg_ag *ag, struct seg_model *m, struct seg_var *x,
                                 float alpha, bool probs_too, bool pred_norm, struct seg_var **out);

#endif
