"""VAAL's networks and training loop (torch), loaded only when the ``vaal`` sampler runs.

See ``al_core/samplers/vaal.py`` for the method and its options. Cost: ``steps`` x 2 x batch VAE
+ discriminator passes (forward and backward), then one encoder pass over the unlabeled pool in
blocks; memory: the two small networks and one block of images.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from al_core.samplers.pool import Pool
from al_core.samplers.ranking import RunningSmallest
from al_core.samplers.registry import Selection

SCORING_BLOCK = 256


class VAE(nn.Module):
    """Four stride-2 convolutions down to 4x4 (64 px input), a Gaussian latent, and the mirror up."""

    def __init__(self, latent_dim: int, crop_size: int):
        super().__init__()
        widths = (32, 64, 128, 256)
        layers, channels = [], 3
        for width in widths:
            layers += [nn.Conv2d(channels, width, 4, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
            channels = width
        self.encoder = nn.Sequential(*layers, nn.Flatten())
        self.side = crop_size // 16
        flat = widths[-1] * self.side * self.side
        self.mean = nn.Linear(flat, latent_dim)
        self.log_variance = nn.Linear(flat, latent_dim)
        self.expand = nn.Linear(latent_dim, flat)
        layers = []
        for width, out in zip(widths[::-1], widths[::-1][1:] + (3,)):
            layers += [nn.ConvTranspose2d(width, out, 4, 2, 1)] + ([nn.BatchNorm2d(out), nn.ReLU()] if out != 3 else [])
        self.decoder = nn.Sequential(*layers)

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.encoder(images)
        return self.mean(hidden), self.log_variance(hidden)

    def forward(self, images: torch.Tensor, generator: torch.Generator):
        mean, log_variance = self.encode(images)
        noise = torch.randn(mean.shape, generator=generator)
        latent = mean + noise * torch.exp(0.5 * log_variance)
        hidden = self.expand(latent).view(images.shape[0], -1, self.side, self.side)
        return self.decoder(hidden), mean, log_variance


def _discriminator(latent_dim: int) -> nn.Module:
    return nn.Sequential(nn.Linear(latent_dim, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 1))


def _to_tensor(images: np.ndarray, crop_size: int, generator: torch.Generator | None) -> torch.Tensor:
    """``(B, H, W[, 3]) uint8`` -> ``(B, 3, crop, crop)`` in [-1, 1]: resize to crop + crop/8, then a
    random crop (training, with ``generator``) or the centre crop (scoring)."""
    batch = torch.from_numpy(np.array(images, copy=True)).float().div_(127.5).sub_(1.0)
    batch = batch.unsqueeze(1).expand(-1, 3, -1, -1) if batch.ndim == 3 else batch.permute(0, 3, 1, 2)
    resized = crop_size + crop_size // 8
    batch = F.interpolate(batch, size=(resized, resized), mode="bilinear", align_corners=False)
    if generator is None:
        top = left = (resized - crop_size) // 2
        return batch[:, :, top:top + crop_size, left:left + crop_size].contiguous()
    offsets = torch.randint(0, resized - crop_size + 1, (batch.shape[0], 2), generator=generator)
    return torch.stack([image[:, t:t + crop_size, l:l + crop_size] for image, (t, l) in zip(batch, offsets.tolist())])


def _kl(mean: torch.Tensor, log_variance: torch.Tensor) -> torch.Tensor:
    return -0.5 * torch.mean(1 + log_variance - mean.pow(2) - log_variance.exp())


def train_and_select(pool: Pool, budget: int, seed: int) -> Selection:
    """Train the VAE and the discriminator on the pool's images, then pick the ``budget``
    unlabeled items of smallest P(labeled). Scores: that probability."""
    settings = pool.options
    labeled, unlabeled = np.flatnonzero(pool.labeled_mask), pool.unlabeled_indices
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    crop, batch_size = settings["crop_size"], settings["batch_size"]
    vae, discriminator = VAE(settings["latent_dim"], crop), _discriminator(settings["latent_dim"])
    vae_optimizer = torch.optim.Adam(vae.parameters(), lr=5e-4)
    discriminator_optimizer = torch.optim.Adam(discriminator.parameters(), lr=5e-4)
    images = pool.images
    for _ in tqdm(range(settings["steps"]), desc="vaal: VAE + discriminator", unit="step", leave=False, disable=None):
        picks = [np.sort(rows[torch.randint(0, rows.size, (batch_size,), generator=generator).numpy()]) for rows in (labeled, unlabeled)]
        batches = [_to_tensor(images[rows], crop, generator) for rows in picks]
        vae.train()
        discriminator.train()
        loss = 0.0
        latents = []
        for batch in batches:
            reconstruction, mean, log_variance = vae(batch, generator)
            loss = loss + F.mse_loss(reconstruction, batch) + settings["beta"] * _kl(mean, log_variance)
            latents.append(mean)
        # The VAE tries to make every latent look labeled to the discriminator.
        fooled = torch.cat([discriminator(latent) for latent in latents])
        loss = loss + settings["adversary_weight"] * F.binary_cross_entropy_with_logits(fooled, torch.ones_like(fooled))
        vae_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        vae_optimizer.step()
        logits = torch.cat([discriminator(latent.detach()) for latent in latents])
        truth = torch.cat([torch.ones(batch_size, 1), torch.zeros(batch_size, 1)])
        discriminator_loss = F.binary_cross_entropy_with_logits(logits, truth)
        discriminator_optimizer.zero_grad(set_to_none=True)
        discriminator_loss.backward()
        discriminator_optimizer.step()
    vae.eval()
    discriminator.eval()
    running = RunningSmallest(budget)
    with torch.inference_mode():  # fixed blocks: scores never depend on the caller's chunk_size
        for start in range(0, unlabeled.size, SCORING_BLOCK):
            rows = unlabeled[start:start + SCORING_BLOCK]
            mean, _ = vae.encode(_to_tensor(images[rows], crop, None))
            running.push(torch.sigmoid(discriminator(mean))[:, 0].double().numpy(), rows)
    return Selection(indices=running.indices, scores=running.scores)
