"""The variational autoencoder: an amortised Gaussian (or flow) posterior and a neural decoder.

Papers: D. P. Kingma and M. Welling, *Auto-Encoding Variational Bayes* (ICLR 2014), and
D. J. Rezende, S. Mohamed and D. Wierstra, *Stochastic Backpropagation and Approximate Inference
in Deep Generative Models* (ICML 2014); the flow posterior is from D. J. Rezende and S. Mohamed,
*Variational Inference with Normalizing Flows* (ICML 2015), section 4.

The generative model and the approximate posterior, for data x (D,) and latents z (L,)::

    p(z) = N(0, I_L)
    p(x | z) = prod_j Bernoulli(x_j; sigmoid(f_theta(z)_j))          likelihood="bernoulli"
             = prod_j N(x_j; f_theta(z)_j, sigma_j^2)                 likelihood="gaussian"
    q(z_0 | x) = N(mu_phi(x), diag(exp(2 log_std_phi(x))))          the encoder
    z = z_K = f_K o ... o f_1 (z_0)                                   posterior="planar"/"radial"

With ``posterior="diagonal"`` there is no flow (z = z_0). With a flow of K layers, the flow is
*amortised* as in the paper's flow-VAE: the encoder has a third head that outputs every layer's
parameters for each data point (planar: u (L,), w (L,), b; radial: z0 (L,), alpha, beta), and
the layers are :func:`bayeskit.flows.planar_transform` / :func:`bayeskit.flows.radial_transform`
(which apply the invertibility constraints). By the change of variables,
``log q(z_K | x) = log q(z_0 | x) - sum_k log |det df_k/dz_{k-1}|``.

Everything here is float32 (bayeskit turns on float64 for GPs and filters; neural networks do
not need it and run twice as fast without it).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from .. import _config  # noqa: F401  (bayeskit's JAX settings)
from ..flows import planar_transform, radial_transform

__all__ = ["VAE", "LIKELIHOODS", "POSTERIORS"]

LIKELIHOODS = ("bernoulli", "gaussian")
POSTERIORS = ("diagonal", "planar", "radial")
F32 = jnp.float32
_LOG_2PI = math.log(2.0 * math.pi)
# channels of the two stride-2 convolutions of the ``conv=True`` option
_CONV_CHANNELS = (16, 32)


def _linear(n_in: int, n_out: int, rngs: nnx.Rngs, **kwargs) -> nnx.Linear:
    return nnx.Linear(n_in, n_out, dtype=F32, param_dtype=F32, rngs=rngs, **kwargs)


def _int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise TypeError(f"{name} must be an integer; got {value!r}")
    v = int(value.__index__())
    if v < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {v}")
    return v


def image_side(data_dim: int) -> int:
    """Side s of the square s x s image flattened into ``data_dim`` pixels (for ``conv=True``)."""
    side = math.isqrt(data_dim)
    if side * side != data_dim or side % 4 != 0:
        raise ValueError(
            f"conv=True needs square images whose side is a multiple of 4 (8x8 digits: data_dim=64; "
            f"28x28 MNIST: data_dim=784); got data_dim={data_dim}"
        )
    return side


def flow_parameter_count(posterior: str, latent_dim: int) -> int:
    """Parameters of one flow layer: planar u, w (L each) and b; radial z0 (L), alpha, beta."""
    return {"diagonal": 0, "planar": 2 * latent_dim + 1, "radial": latent_dim + 2}[posterior]


class _Encoder(nnx.Module):
    """x (n, D) -> (mean (n, L), log_std (n, L), flow parameters (n, K, P) or None)."""

    def __init__(self, data_dim, latent_dim, hidden, conv, flow_length, flow_params, rngs):
        self.conv = conv
        self.latent_dim = latent_dim
        self.flow_length = flow_length
        self.flow_params = flow_params
        if conv:
            self.side = image_side(data_dim)
            c1, c2 = _CONV_CHANNELS
            self.convs = nnx.List([
                nnx.Conv(1, c1, kernel_size=(3, 3), strides=(2, 2), padding="SAME", dtype=F32, param_dtype=F32, rngs=rngs),
                nnx.Conv(c1, c2, kernel_size=(3, 3), strides=(2, 2), padding="SAME", dtype=F32, param_dtype=F32, rngs=rngs),
            ])
            width = (self.side // 4) ** 2 * c2
        else:
            width = data_dim
        sizes = (width, *hidden)
        self.layers = nnx.List([_linear(a, b, rngs) for a, b in zip(sizes[:-1], sizes[1:])])
        self.gaussian_head = _linear(sizes[-1], 2 * latent_dim, rngs)
        if flow_length:
            # The flow starts (nearly) the same for every x: a small kernel, and a bias that
            # sets each layer's starting parameters. Radial: all zero, the identity. Planar:
            # u = 0, b = 0 and w = 1/sqrt(L) (|w| = 1), a mild contraction along w. Not w near 0:
            # the invertible reparameterisation u_hat = u + (m(w.u) - w.u) w / |w|^2 makes
            # |u_hat| ~ 0.3 / |w|, a huge shift for a small w.
            self.flow_head = _linear(sizes[-1], flow_length * flow_params, rngs,
                                     kernel_init=nnx.initializers.normal(1e-2))
            if flow_params == 2 * latent_dim + 1:  # planar
                start = jnp.zeros((flow_length, flow_params), F32)
                start = start.at[:, latent_dim: 2 * latent_dim].set(1.0 / math.sqrt(latent_dim))
                self.flow_head.bias[...] = start.reshape(-1)

    def __call__(self, x):
        h = x
        if self.conv:
            h = h.reshape(-1, self.side, self.side, 1)
            for layer in self.convs:
                h = jax.nn.relu(layer(h))
            h = h.reshape(h.shape[0], -1)
        for layer in self.layers:
            h = jax.nn.relu(layer(h))
        out = self.gaussian_head(h)
        mean, log_std = out[:, : self.latent_dim], out[:, self.latent_dim:]
        flow = None
        if self.flow_length:
            flow = self.flow_head(h).reshape(h.shape[0], self.flow_length, self.flow_params)
        return mean, log_std, flow


class _Decoder(nnx.Module):
    """z (..., L) -> logits or means (..., D)."""

    def __init__(self, data_dim, latent_dim, hidden, conv, rngs):
        self.conv = conv
        self.data_dim = data_dim
        sizes = (latent_dim, *reversed(hidden))
        self.layers = nnx.List([_linear(a, b, rngs) for a, b in zip(sizes[:-1], sizes[1:])])
        if conv:
            self.side = image_side(data_dim)
            c1, c2 = _CONV_CHANNELS
            self.to_grid = _linear(sizes[-1], (self.side // 4) ** 2 * c2, rngs)
            self.deconvs = nnx.List([
                nnx.ConvTranspose(c2, c1, kernel_size=(3, 3), strides=(2, 2), padding="SAME", dtype=F32, param_dtype=F32, rngs=rngs),
                nnx.ConvTranspose(c1, 1, kernel_size=(3, 3), strides=(2, 2), padding="SAME", dtype=F32, param_dtype=F32, rngs=rngs),
            ])
        else:
            self.out = _linear(sizes[-1], data_dim, rngs)

    def __call__(self, z):
        lead = z.shape[:-1]
        h = z.reshape(-1, z.shape[-1])
        for layer in self.layers:
            h = jax.nn.relu(layer(h))
        if self.conv:
            q = self.side // 4
            h = jax.nn.relu(self.to_grid(h)).reshape(-1, q, q, _CONV_CHANNELS[1])
            h = jax.nn.relu(self.deconvs[0](h))
            h = self.deconvs[1](h).reshape(h.shape[0], -1)
        else:
            h = self.out(h)
        return h.reshape(*lead, self.data_dim)


class VAE(nnx.Module):
    """A variational autoencoder (Flax NNX, float32).

    Parameters
    ----------
    data_dim : D, the length of a (flattened) data vector.
    latent_dim : L.
    hidden : widths of the hidden layers of the encoder MLP; the decoder mirrors them
        (e.g. ``(256,)``: D -> 256 -> 2L and L -> 256 -> D). ReLU activations.
    likelihood : ``"bernoulli"`` (data in [0, 1]; the decoder outputs logits) or ``"gaussian"``
        (the decoder outputs means; per-pixel noise std learned, or fixed by ``obs_std``).
    posterior : ``"diagonal"`` Gaussian, or a ``"planar"`` / ``"radial"`` flow of ``flow_length``
        layers on top of it, amortised (its parameters come from the encoder, per data point).
    flow_length : K, the number of flow layers (0 for ``"diagonal"``, >= 1 for a flow).
    conv : a small convolutional encoder/decoder for square images whose side is a multiple of
        4 (8x8 digits, 28x28 MNIST): two 3x3 stride-2 convolutions (16, 32 channels) before the
        MLP, and two stride-2 transposed convolutions after it.
    obs_std : for ``likelihood="gaussian"``: a fixed observation noise std, or ``None`` to
        learn one std per data dimension.
    rngs : ``nnx.Rngs`` for the initial weights (default ``nnx.Rngs(0)``).

    Methods: :meth:`encode` ``x (n, D) -> (mean, log_std)`` each (n, L); :meth:`decode`
    ``z (..., L) -> (..., D)`` logits (Bernoulli) or means (Gaussian); :meth:`decode_mean`
    the mean of p(x | z) (probabilities for Bernoulli); :meth:`log_likelihood`
    ``log p(x | z)``. The objectives, training and diagnostics are functions of the model
    (:func:`bayeskit.vae.elbo`, :func:`bayeskit.vae.train`, ...).
    """

    def __init__(
        self,
        data_dim: int,
        latent_dim: int,
        hidden=(256,),
        likelihood: str = "bernoulli",
        posterior: str = "diagonal",
        flow_length: int = 0,
        conv: bool = False,
        obs_std: float | None = None,
        rngs: nnx.Rngs | None = None,
    ):
        data_dim = _int(data_dim, "data_dim", 1)
        latent_dim = _int(latent_dim, "latent_dim", 1)
        if isinstance(hidden, (int,)):
            hidden = (hidden,)
        try:
            hidden = tuple(_int(h, "hidden (each width)", 1) for h in hidden)
        except TypeError:
            raise TypeError(f"hidden must be a tuple of positive integer widths; got {hidden!r}") from None
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}; got {likelihood!r}")
        if posterior not in POSTERIORS:
            raise ValueError(f"posterior must be one of {POSTERIORS}; got {posterior!r}")
        flow_length = _int(flow_length, "flow_length", 0)
        if posterior == "diagonal" and flow_length:
            raise ValueError(f"flow_length={flow_length} needs posterior='planar' or 'radial'; got 'diagonal'")
        if posterior != "diagonal" and not flow_length:
            raise ValueError(f"posterior={posterior!r} needs flow_length >= 1 (the number of flow layers)")
        if obs_std is not None:
            if likelihood != "gaussian":
                raise ValueError("obs_std only applies to likelihood='gaussian'")
            obs_std = float(obs_std)
            if not math.isfinite(obs_std) or obs_std <= 0:
                raise ValueError(f"obs_std must be finite and > 0 (or None to learn it); got {obs_std}")
        conv = bool(conv)
        if conv:
            image_side(data_dim)
        rngs = nnx.Rngs(0) if rngs is None else rngs
        if not isinstance(rngs, nnx.Rngs):
            raise TypeError(f"rngs must be a flax.nnx.Rngs; got {type(rngs).__name__}")

        self.data_dim, self.latent_dim, self.hidden = data_dim, latent_dim, hidden
        self.likelihood, self.posterior, self.flow_length = likelihood, posterior, flow_length
        self.conv, self.obs_std = conv, obs_std
        n_flow = flow_parameter_count(posterior, latent_dim)
        self.encoder = _Encoder(data_dim, latent_dim, hidden, conv, flow_length, n_flow, rngs)
        self.decoder = _Decoder(data_dim, latent_dim, hidden, conv, rngs)
        if likelihood == "gaussian" and obs_std is None:
            self.log_obs_std = nnx.Param(jnp.zeros((data_dim,), dtype=F32))

    # -- configuration -----------------------------------------------------------------------
    @property
    def config(self) -> dict:
        """The constructor arguments (without ``rngs``): ``VAE(**vae.config)`` rebuilds the shape."""
        return {
            "data_dim": self.data_dim,
            "latent_dim": self.latent_dim,
            "hidden": list(self.hidden),
            "likelihood": self.likelihood,
            "posterior": self.posterior,
            "flow_length": self.flow_length,
            "conv": self.conv,
            "obs_std": self.obs_std,
        }

    # -- the networks ----------------------------------------------------------------------------
    def encode(self, x):
        """Mean and log standard deviation of q(z_0 | x): x (n, D) -> ((n, L), (n, L))."""
        mean, log_std, _ = self.encoder(x)
        return mean, log_std

    def encode_all(self, x):
        """(mean (n, L), log_std (n, L), flow parameters (n, K, P) or None)."""
        return self.encoder(x)

    def decode(self, z):
        """z (..., L) -> Bernoulli logits or Gaussian means (..., D)."""
        return self.decoder(z)

    def decode_mean(self, z):
        """The mean of p(x | z): sigmoid(logits) (Bernoulli) or the Gaussian mean, (..., D)."""
        out = self.decoder(z)
        return jax.nn.sigmoid(out) if self.likelihood == "bernoulli" else out

    def log_likelihood(self, x, decoded):
        """log p(x | z) summed over the D data dimensions: x (n, D), decoded (..., n, D) -> (..., n).

        Bernoulli: sum_j x_j l_j - softplus(l_j) (= log sigmoid for x = 1, log(1 - sigmoid) for
        x = 0, written without forming either probability, so it cannot underflow). Gaussian:
        sum_j log N(x_j; m_j, sigma_j^2).
        """
        if self.likelihood == "bernoulli":
            return jnp.sum(x * decoded - jax.nn.softplus(decoded), axis=-1)
        log_sigma = self.log_obs_std[...] if self.obs_std is None else jnp.asarray(math.log(self.obs_std), F32)
        resid = (x - decoded) * jnp.exp(-log_sigma)
        return jnp.sum(-0.5 * resid * resid - log_sigma - 0.5 * _LOG_2PI, axis=-1)

    def flow(self, z0, flow_params):
        """Push z0 (..., n, L) through the K amortised layers: (z_K (..., n, L), sum log|det| (..., n)).

        flow_params (n, K, P) from :meth:`encode_all`; planar layer k reads u = p[:, k, :L],
        w = p[:, k, L:2L], b = p[:, k, 2L]; radial reads z0 = p[:, k, :L], alpha, beta.
        """
        L = self.latent_dim
        z, total = z0, jnp.zeros(z0.shape[:-1], z0.dtype)
        for k in range(self.flow_length):
            p = flow_params[:, k, :]
            if self.posterior == "planar":
                z, log_det = planar_transform(z, p[:, :L], p[:, L: 2 * L], p[:, 2 * L])
            else:
                z, log_det = radial_transform(z, p[:, :L], p[:, L], p[:, L + 1])
            total = total + log_det
        return z, total
