/* methods.h: helpers shared by the training methods. */
#ifndef SEGDA_METHODS_H
#define SEGDA_METHODS_H

#include <math.h>

#include "model/losses.h"
#include "train/trainer.h"

#define TRY(expr) SEG_TRY(expr)

/* Forward of the segmentation network in training mode and its supervised loss:
 * CE(main) + loss.aux_weight * CE(aux), logits upsampled to the input (align_corners). */
enum seg_status seg_segmentation_loss(struct seg_trainer *t, struct seg_var *images,
                                      const struct seg_tensor *labels, struct seg_model_out *out,
                                      struct seg_var **loss, struct seg_losses *losses);
/* Records a [1] loss variable's value (a device copy, read at the end of the step). */
enum seg_status seg_losses_add_var(struct seg_losses *l, const char *name, struct seg_var *v);
/* Before an optimizer step: one process tests the terms so far on the device, and a
 * non-finite one makes the step's optimizer updates no-ops (the trainer reports it at the
 * end of the step). In a data-parallel job every rank calls it at the same point, reads
 * the terms and all fail together (SEG_STATUS_INVALID naming the first NaN or infinite
 * term) when any rank's term is not finite, so no rank waits in the next collective. */
enum seg_status seg_check_finite(const struct seg_trainer *t, struct seg_losses *l);

#endif
