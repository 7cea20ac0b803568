"""VAAL: Variational Adversarial Active Learning (Sinha et al., ICCV 2019), as the paper ran it.

A VAE learns a latent space of labeled and unlabeled images (random ``crop_size`` crops, 64 px as
in the paper) while a discriminator learns to tell labeled latents from unlabeled ones; the VAE
is also trained to fool it. One VAE step and one discriminator step per iteration, ``steps``
iterations (the paper trains them alongside the classifier, one step each per classifier step).
The query: the unlabeled items the discriminator is most confident are unlabeled, i.e. the
smallest discriminator output P(labeled | centre crop). Ties go to pool order.

The networks and their training live in ``_vaal_training`` (torch), imported only when the
sampler runs, so that listing samplers does not load torch.
"""

from __future__ import annotations

from al_core.errors import InputError
from al_core.samplers.pool import Pool
from al_core.samplers.registry import Selection, register_sampler
from al_core.schema import NUMBER, Setting, at_least, positive

OPTIONS = {
    "steps": positive(default=200, help="VAE and discriminator steps, one each per step"),
    "batch_size": positive(default=32, help="labeled and unlabeled images per step (each)"),
    "latent_dim": positive(default=32, help="VAE latent size"),
    "crop_size": Setting(int, default=64, valid=lambda value: value >= 16 and value % 16 == 0,
                         expected="a multiple of 16", help="side of the random training crops and the centre scoring crops (the paper's 64)"),
    "beta": at_least(0, NUMBER, default=1.0, help="weight of the VAE's KL term"),
    "adversary_weight": at_least(0, NUMBER, default=1.0, help="weight of the VAE's loss for fooling the discriminator"),
}


@register_sampler(
    "vaal",
    needs=("images",),
    summary="VAE + discriminator on labeled vs unlabeled images: most confidently unlabeled first",
    options=OPTIONS,
)
def vaal_sampler(pool: Pool, budget: int, seed: int) -> Selection:
    """Scores: the discriminator's P(labeled) of each picked item (smallest first).

    Cost: ``steps`` x 2 x ``batch_size`` VAE + discriminator passes (forward and backward), then
    one encoder pass over the unlabeled pool in 256-image blocks; memory: the two small networks
    and one block of images. CPU-slow: meant for a GPU.
    """
    if not pool.labeled_mask.any():
        raise InputError("sampler 'vaal' needs at least one labeled item to tell labeled from unlabeled")
    from al_core.samplers._vaal_training import train_and_select

    return train_and_select(pool, budget, seed)
