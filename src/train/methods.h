/* methods.h: helpers shared by the training methods. */
#ifndef SEGDA_METHODS_H
#define SEGDA_METHODS_H

#include <math.h>

#include "model/losses.h"
#include "train/trainer.h"

#define TRY(expr) SEG_TRY(expr)

/* Forward of the segmentation network in training mode and its supervised loss:
 * CE(main) + loss.aux_weight * CE(aux) + loss.source_lovasz * Lovasz(main), logits upsampled to
 * the input (align_corners). */
enum seg_status seg_segmentation_loss(struct seg_trainer *t, struct seg_var *images,
                                      const struct seg_tensor *labels, struct seg_model_out *out,
                                      struct seg_var **loss, struct seg_losses *losses);
/* The supervised terms from logits: terms[0] = CE(main), terms[1] = CE(aux) (NULL when aux
 * or aux_w is 0), terms[2] = Lovasz-softmax of softmax(main) (NULL when lov_w is 0), each on
 * logits upsampled bilinearly (align_corners) to the labels' [N, H, W]; *loss = terms[0] +
 * aux_w terms[1] + lov_w terms[2]. */
enum seg_status seg_supervised_terms(struct seg_ag *ag, struct seg_var *main, struct seg_var *aux,
                                     const struct seg_tensor *labels, double aux_w, double lov_w,
                                     struct seg_var *terms[3], struct seg_var **loss);
/* Records a [1] loss variable's value (a device copy, read at the end of the step). */
enum seg_status seg_losses_add_var(struct seg_losses *l, const char *name, struct seg_var *v);
/* Before an optimizer step: one process tests the terms so far on the device, and a
 * non-finite one makes the step's optimizer updates no-ops (the trainer reports it at the
 * end of the step). In a data-parallel job every rank calls it at the same point, reads
 * the terms and all fail together (SEG_STATUS_INVALID naming the first NaN or infinite
 * term) when any rank's term is not finite, so no rank waits in the next collective. */
enum seg_status seg_check_finite(const struct seg_trainer *t, struct seg_losses *l);

#endif
