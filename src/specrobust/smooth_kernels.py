"""The smooth-kernel paper's (seed 003) analyses of trained models: Figure 1, Figure 2, Figures 3-6 and 10-17.

Every analysis is a pure function of (model, images, labels, parameters) that returns numpy arrays: it runs in fp32
under :func:`specrobust.evaluate.fp32_eval` (eval mode, TF32 off), batch by batch, and draws its randomness from a
seeded generator, so the same inputs give the same arrays. Models take [0, 1] NCHW inputs (they normalise inside).

- :func:`first_layer_view` (Figure 1): the first convolution's first four kernels, |DFT| of each and the feature
  maps that the kernels make of one image.
- :func:`fgsm_minimal` + :func:`deceptive_images` / :func:`deceptive_across_models` (Figure 2): the most deceptive
  FGSM adversarial of each class.
- :func:`class_images` (Figures 3-6): activation maximisation from Gaussian noise.
- :func:`targeted_grid` (Appendix C, Figures 10-37): a targeted attack from one source image of each class to every
  other class.

The ``run_*`` functions are the rule-level wrappers: a checkpoint and a prepared data set in, an ``.npz`` out.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from .evaluate import fp32_eval

CLASS_IMAGE_STEPS = 10_000   # Section 4.3: "projected gradient descent 10000 iterations with learning rate 0.001"
CLASS_IMAGE_LR = 1e-3


def foolbox2_fgsm_grid(n: int = 1000, max_eps: float = 1.0) -> np.ndarray:
    """foolbox 2's ``GradientSignAttack`` default search grid (``epsilons=1000``, ``max_epsilon=1``): n evenly
    spaced eps in (0, max_eps]."""
    return np.linspace(0.0, max_eps, n + 1)[1:]


# ---------------------------------------------------------------------------------------------------- Figure 1
def first_conv(model: torch.nn.Module) -> torch.nn.Conv2d:
    """The first ``nn.Conv2d`` in module order: SmallCNN's conv1, a ResNet's stem."""
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            return m
    raise ValueError("the model has no nn.Conv2d")


def kernel_spectrum(kernels: np.ndarray, pad: int = 32) -> np.ndarray:
    """|DFT| of each 2-D kernel (..., kh, kw), zero-padded to pad x pad and fftshifted (DC at (pad//2, pad//2)).
    Zero padding samples the same continuous spectrum of the finite kernel more finely; it adds no content."""
    k = np.asarray(kernels, dtype=np.float64)
    pad = max(int(pad), *k.shape[-2:])
    return np.abs(np.fft.fftshift(np.fft.fft2(k, s=(pad, pad)), axes=(-2, -1)))


def first_layer_view(model, image, n_kernels: int = 4, pad: int = 32) -> dict:
    """Figure 1 for one model and one image (C, H, W) in [0, 1] (the paper's: a star).

    Returns, for the first ``n_kernels`` output channels of the first convolution:

    - ``kernels`` (k, in, kh, kw): the weights;
    - ``kernels_2d`` (k, kh, kw): one 2-D kernel per output channel to draw: the weights themselves for one input
      channel, their sum over input channels otherwise (the kernel's response to a gray input);
    - ``spectra`` (k, P, P): |DFT| of ``kernels_2d``, zero-padded to P = max(pad, kernel size) ("for
      visibility": a 5x5 DFT has only 25 samples), fftshifted so that low frequencies are in the centre, as in the
      paper's Figure 1(b); ``spectra_channels`` (k, in, P, P) the same per input channel;
    - ``features`` (k, H', W'): Figure 1(c)'s "internal representation after an image ... is passed through the
      kernels": the first convolution's output (bias included) **before** any ReLU / BatchNorm, captured by a
      hook, so it is exactly what the layer computes from the model's own normalised input;
      ``features_relu`` = max(features, 0), what SmallCNN passes on (a ResNet applies BatchNorm first);
    - ``image`` (C, H, W), ``bias`` (k,) (zeros when the conv has none), ``stride``/``padding`` of the conv.
    """
    image = torch.as_tensor(image, dtype=torch.float32)
    if image.dim() != 3:
        raise ValueError(f"first_layer_view takes one (C, H, W) image, got shape {tuple(image.shape)}")
    conv = first_conv(model)
    k = min(int(n_kernels), conv.out_channels)
    captured = {}
    handle = conv.register_forward_hook(lambda mod, inp, out: captured.__setitem__("out", out.detach()))
    try:
        with fp32_eval(model), torch.no_grad():
            model(image[None].to(next(model.parameters()).device))
    finally:
        handle.remove()
    w = conv.weight.detach().float().cpu().numpy()[:k]
    kernels_2d = w[:, 0] if w.shape[1] == 1 else w.sum(1)
    features = captured["out"][0, :k].float().cpu().numpy()
    bias = conv.bias.detach().float().cpu().numpy()[:k] if conv.bias is not None else np.zeros(k, np.float32)
    return {"kernels": w, "kernels_2d": kernels_2d, "spectra": kernel_spectrum(kernels_2d, pad),
            "spectra_channels": kernel_spectrum(w, pad), "features": features,
            "features_relu": np.maximum(features, 0.0), "image": image.cpu().numpy(), "bias": bias,
            "stride": np.array(conv.stride), "padding": np.array(conv.padding if isinstance(conv.padding, tuple)
                                                                 else (-1, -1))}


# ---------------------------------------------------------------------------------------------------- Figure 2
def fgsm_minimal(model, x, y, eps_grid, batch_size: int = 500) -> dict:
    """FGSM with the smallest fooling eps of ``eps_grid`` per example, as foolbox 2's ``GradientSignAttack`` (the
    paper ran its attacks "with the default parameters in Foolbox") searches it: one gradient of the cross-entropy
    at x, then x + eps * sign(grad), clipped to [0, 1], for growing eps until the prediction is wrong.

    Returns per example: ``adv`` (N, C, H, W) (x itself where no eps fooled), ``eps`` (NaN where none fooled),
    ``fooled`` (bool: correct on x, wrong on adv), ``clean_correct``, ``pred`` on adv, ``wrong_conf`` = the
    softmax probability of the (wrong) predicted class on adv, 0 unless fooled. Examples that the model already
    misclassifies are not attacked (not fooled, wrong_conf 0): a clean mistake is no adversarial example.
    """
    grid = np.sort(np.asarray(eps_grid, dtype=np.float64).ravel())
    if not len(grid) or grid[0] <= 0:
        raise ValueError("eps_grid needs positive values")
    x, y = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long)
    advs, epss, preds, confs, correct = [], [], [], [], []
    with fp32_eval(model):
        for i in range(0, len(x), batch_size):
            xb, yb = x[i:i + batch_size], y[i:i + batch_size]
            xg = xb.clone().requires_grad_(True)
            logits = model(xg)
            grad, = torch.autograd.grad(F.cross_entropy(logits, yb, reduction="sum"), xg)
            sign = grad.sign()
            ok = (logits.detach().argmax(1) == yb)
            adv, eps = xb.clone(), torch.full((len(xb),), float("nan"), device=xb.device)
            pred, conf = logits.detach().argmax(1), torch.zeros(len(xb), device=xb.device)
            todo = ok.clone()
            with torch.no_grad():
                for e in grid:
                    idx = todo.nonzero().flatten()
                    if not len(idx):
                        break
                    cand = (xb[idx] + float(e) * sign[idx]).clamp(0.0, 1.0)
                    p = F.softmax(model(cand).float(), 1)
                    wrong = p.argmax(1) != yb[idx]
                    hit = idx[wrong]
                    adv[hit], eps[hit] = cand[wrong], float(e)
                    pred[hit], conf[hit] = p[wrong].argmax(1), p[wrong].amax(1)
                    todo[hit] = False
            advs.append(adv.cpu())
            epss.append(eps.cpu())
            preds.append(pred.cpu())
            confs.append(conf.cpu())
            correct.append(ok.cpu())
    eps = torch.cat(epss).numpy() if epss else np.zeros(0)
    return {"adv": torch.cat(advs).numpy() if advs else np.zeros((0, *x.shape[1:]), np.float32), "eps": eps,
            "fooled": np.isfinite(eps), "clean_correct": torch.cat(correct).numpy() if correct else np.zeros(0, bool),
            "pred": torch.cat(preds).numpy() if preds else np.zeros(0, np.int64),
            "wrong_conf": torch.cat(confs).numpy() if confs else np.zeros(0)}


def _select(score: np.ndarray, y: np.ndarray, eligible: np.ndarray, num_classes: int, top_k: int) -> np.ndarray:
    """(num_classes, top_k) indices of the highest ``score`` among eligible examples of each class, best first;
    -1 where a class has fewer eligible examples."""
    sel = np.full((num_classes, top_k), -1, dtype=np.int64)
    for c in range(num_classes):
        idx = np.flatnonzero((y == c) & eligible)
        order = idx[np.argsort(-score[idx], kind="stable")][:top_k]
        sel[c, :len(order)] = order
    return sel


def _mean_of(arr: np.ndarray, sel: np.ndarray) -> np.ndarray:
    """Per class the mean of ``arr[sel[c]]`` over the valid (>= 0) indices; NaN for a class without any."""
    out = np.full((len(sel), *arr.shape[1:]), np.nan, dtype=np.float64)
    for c, row in enumerate(sel):
        row = row[row >= 0]
        if len(row):
            out[c] = arr[row].astype(np.float64).mean(0)
    return out


def deceptive_images(model, x, y, eps_grid, num_classes: int | None = None, top_k: int = 1,
                     batch_size: int = 500) -> dict:
    """Figure 2 for one model: per class, the FGSM adversarial examples on which the model "predict[s]
    incorrectly with the highest confidence", averaged over the ``top_k`` most confident ones.

    Per-example FGSM from :func:`fgsm_minimal`; among the examples of class c that it fools, the ``top_k`` with
    the highest softmax probability of the wrong predicted class are selected (``selected`` (K, top_k), -1
    padded). ``images`` (K, C, H, W) = mean of their adversarials, ``originals`` (K, C, H, W) = mean of the same
    clean images (the O of the figure), NaN for a class with nothing fooled; ``count`` (K,) how many were averaged;
    ``pred`` / ``conf`` / ``eps`` (K, top_k) of the selected (-1 / 0 / NaN padded). ``top_k=1`` gives one real
    example per class (the paper's Appendix D: "We plot one example for each class"); the per-example arrays of
    :func:`fgsm_minimal` are returned too (``per_example``), which :func:`deceptive_across_models` needs.
    """
    y_np = np.asarray(torch.as_tensor(y).cpu())
    num_classes = int(num_classes if num_classes is not None else y_np.max() + 1)
    per = fgsm_minimal(model, x, y, eps_grid, batch_size)
    sel = _select(per["wrong_conf"], y_np, per["fooled"], num_classes, top_k)
    x_np = np.asarray(torch.as_tensor(x, dtype=torch.float32).cpu())
    safe = np.where(sel >= 0, sel, 0)
    return {"images": _mean_of(per["adv"], sel), "originals": _mean_of(x_np, sel), "selected": sel,
            "count": (sel >= 0).sum(1), "pred": np.where(sel >= 0, per["pred"][safe], -1),
            "conf": np.where(sel >= 0, per["wrong_conf"][safe], 0.0),
            "eps": np.where(sel >= 0, per["eps"][safe], np.nan), "per_example": per}


def deceptive_across_models(per_model: Mapping[str, dict], x, y, num_classes: int | None = None,
                            top_k: int = 1) -> dict:
    """Figure 2 as the paper draws it: ONE original per class (the single O column) and each model's adversarial
    of it. "The four on-average most deceptive adversarial examples (the models predict incorrectly with the
    highest confidence)": per class, the example with the highest wrong-class confidence averaged over the
    models (a model that is not fooled, or misclassifies it clean, contributes 0).

    ``per_model``: ``label -> fgsm_minimal(...)`` (or a :func:`deceptive_images` result, its ``per_example``)
    on the same x, y. Returns ``originals`` (K, C, H, W), ``selected`` (K, top_k), ``mean_conf`` (K, top_k), and
    ``models``: ``label -> {images, pred, conf, eps}`` with images (K, C, H, W) averaged over the top_k (one
    example for top_k=1) and pred / conf / eps (K, top_k).
    """
    per = {label: d.get("per_example", d) for label, d in per_model.items()}
    if not per:
        raise ValueError("no models given")
    y_np = np.asarray(torch.as_tensor(y).cpu())
    num_classes = int(num_classes if num_classes is not None else y_np.max() + 1)
    score = np.mean([np.where(d["fooled"], d["wrong_conf"], 0.0) for d in per.values()], axis=0)
    eligible = np.any([d["fooled"] for d in per.values()], axis=0)
    sel = _select(score, y_np, eligible, num_classes, top_k)
    safe = np.where(sel >= 0, sel, 0)
    x_np = np.asarray(torch.as_tensor(x, dtype=torch.float32).cpu())
    models = {label: {"images": _mean_of(d["adv"], sel), "pred": np.where(sel >= 0, d["pred"][safe], -1),
                      "conf": np.where(sel >= 0, d["wrong_conf"][safe], 0.0),
                      "eps": np.where(sel >= 0, d["eps"][safe], np.nan)} for label, d in per.items()}
    return {"originals": _mean_of(x_np, sel), "selected": sel,
            "mean_conf": np.where(sel >= 0, score[safe], 0.0), "models": models}


# ------------------------------------------------------------------------------------------------ Figures 3-6
OBJECTIVES = ("logit", "ce")
STEPS = ("plain", "sign", "l2")


def _ascend(model, x0: torch.Tensor, target: torch.Tensor, steps: int, lr: float, step: str,
            anchor: torch.Tensor | None = None, eps: float | None = None, batch_size: int = 256,
            record_every: int = 0, objective: str = "logit") -> tuple[torch.Tensor, list]:
    """Projected gradient ascent of the target class's ``objective`` (its logit z_t, or ``ce``: its log-softmax
    z_t - logsumexp z = -CE): x <- P(x + lr * d), d = grad (``plain``), sign(grad) (``sign``) or grad / ||grad||_2
    per image (``l2``); P clips to [0, 1] and, with ``eps``, into the L-inf ball of radius eps around ``anchor``.
    Returns the final images and [(step, target logits)] every ``record_every`` steps."""
    if step not in STEPS:
        raise ValueError(f"step must be one of {STEPS}, not {step!r}")
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, not {objective!r}")
    out, trace = [], []
    for i in range(0, len(x0), batch_size):
        x = x0[i:i + batch_size].clone()
        t = target[i:i + batch_size]
        a = anchor[i:i + batch_size] if anchor is not None else None
        rows = torch.arange(len(x), device=x.device)
        part = []
        for s in range(steps):
            x.requires_grad_(True)
            z = model(x)
            if record_every and s % record_every == 0:
                part.append((s, z.detach()[rows, t].float().cpu().numpy()))
            f = z[rows, t] if objective == "logit" else F.log_softmax(z.float(), 1)[rows, t]
            g, = torch.autograd.grad(f.sum(), x)  # images are independent in eval mode
            if step == "sign":
                g = g.sign()
            elif step == "l2":
                g = g / g.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *[1] * (g.dim() - 1))
            x = x.detach() + lr * g
            if eps is not None and a is not None:
                x = torch.min(torch.max(x, a - eps), a + eps)
            x = x.clamp_(0.0, 1.0)
        out.append(x.detach())
        trace.append(part)
    merged = [(s, np.concatenate([p[j][1] for p in trace])) for j, (s, _) in enumerate(trace[0])] if trace else []
    return torch.cat(out), merged


def class_images(model, num_classes: int, shape, steps: int = CLASS_IMAGE_STEPS, lr: float = CLASS_IMAGE_LR,
                 seed: int = 0, *, step: str = "plain", objective: str = "logit", noise_mean: float = 0.5,
                 noise_std: float = 0.1, per_class: int = 1, record_every: int = 0, batch_size: int = 256) -> dict:
    """Figures 3-6 (Section 4.3): activation maximisation, "with an input image of Gaussian noise, we apply
    projected gradient descent 10000 iterations with learning rate 0.001", maximising "the logit of a certain
    class" (Simonyan et al. 2013; Engstrom et al. 2019).

    Our reading: plain gradient ascent on the target logit (a "learning rate" scales a gradient; ``step="sign"``
    or ``"l2"`` for the signed / L2-normalised steps of PGD attacks), projected onto the image box [0, 1] (the
    only constraint the paper states; no eps ball, no regulariser). Maximising one logit does not guarantee
    that it ends up the largest (a ReLU net's logits can grow together; the figures frame such images red);
    ``objective="ce"`` ascends the target's log-softmax instead (Engstrom et al.'s targeted loss). The noise is
    N(noise_mean, noise_std^2) clipped to [0, 1] (the paper gives no moments), drawn from a generator seeded with
    ``seed``; every class starts from the same noise image (the j-th of ``per_class`` for its j-th image), so the
    images of one model differ only by their target.
    ``shape`` = (C, H, W).

    Returns ``images`` (K * per_class, C, H, W), ``start`` (same shape, the noise: the figures' I), ``target``,
    ``logits`` (K * per_class, K) at the end (the target logit should exceed every other), ``pred``, and with
    ``record_every`` > 0, ``trace_steps`` (T,) and ``trace_logit`` (T, K * per_class) of the target logit.
    """
    c, h, w = (int(v) for v in shape)
    g = torch.Generator().manual_seed(int(seed))
    noise = (noise_mean + noise_std * torch.randn((per_class, c, h, w), generator=g)).clamp(0.0, 1.0)
    start = noise.repeat(num_classes, 1, 1, 1)
    target = torch.arange(num_classes).repeat_interleave(per_class)
    with fp32_eval(model):
        device = next(model.parameters()).device
        images, trace = _ascend(model, start.to(device), target.to(device), int(steps), float(lr), step,
                                batch_size=batch_size, record_every=record_every, objective=objective)
        with torch.no_grad():
            logits = torch.cat([model(images[i:i + batch_size]) for i in range(0, len(images), batch_size)])
    out = {"images": images.cpu().numpy(), "start": start.numpy(), "target": target.numpy(),
           "logits": logits.float().cpu().numpy(), "pred": logits.argmax(1).cpu().numpy(),
           "steps": int(steps), "lr": float(lr), "step": step, "objective": objective}
    if trace:
        out["trace_steps"] = np.array([s for s, _ in trace])
        out["trace_logit"] = np.stack([v for _, v in trace])
    return out


# --------------------------------------------------------------------------------------------- Appendix C
AttackFn = Callable[[torch.nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def ascent_attack(steps: int = 1000, lr: float = 0.01, step: str = "sign", eps: float | None = None,
                  objective: str = "ce", batch_size: int = 256) -> AttackFn:
    """Targeted attack by the projected gradient ascent of :func:`class_images`, but from the source image
    (Appendix C: "we also take advantage of the gradient to perform targeted attack"; Section 4.3 calls it
    "visualization of targeted attack through saliency-based methods"; the paper gives no attack, loss or budget).
    Defaults: the target's log-softmax (``objective="ce"``, the usual targeted loss, which unlike the bare logit
    does aim at the target's being predicted), 1,000 signed steps of 0.01, no eps bound (only [0, 1], like the
    paper's unbounded MNIST attacks); ``eps``: an optional L-inf bound around the source."""
    def attack(model, x, target):
        return _ascend(model, x, target, int(steps), float(lr), step, anchor=x, eps=eps, batch_size=batch_size,
                       objective=objective)[0]
    return attack


def targeted_pgd_attack(eps: float, step_size: float, steps: int, batch_size: int = 256) -> AttackFn:
    """Targeted L-inf PGD (Madry et al.): signed steps that decrease the cross-entropy to the target, from the
    source image, projected into the eps-ball and [0, 1]. The alternative to :func:`ascent_attack`."""
    def attack(model, x, target):
        out = []
        for i in range(0, len(x), batch_size):
            x0, t = x[i:i + batch_size], target[i:i + batch_size]
            xa = x0.clone()
            for _ in range(int(steps)):
                xa.requires_grad_(True)
                grad, = torch.autograd.grad(F.cross_entropy(model(xa), t, reduction="sum"), xa)
                xa = xa.detach() - step_size * grad.sign()
                xa = torch.min(torch.max(xa, x0 - eps), x0 + eps).clamp_(0.0, 1.0)
            out.append(xa.detach())
        return torch.cat(out)
    return attack


def pick_sources(model, x, y, num_classes: int, batch_size: int = 500) -> np.ndarray:
    """Index of the first example of each class that the model classifies correctly, else the first example of the
    class (a model that gets none of them right still has a row), -1 if the class has no example: the source images
    of the targeted-attack grid."""
    x, y = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long)
    with fp32_eval(model), torch.no_grad():
        pred = torch.cat([model(x[i:i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])
    ok = (pred == y).numpy()
    y_np = y.numpy()
    return np.array([(np.flatnonzero(ok & (y_np == c)).tolist() or np.flatnonzero(y_np == c).tolist() or [-1])[0]
                     for c in range(num_classes)])


def targeted_grid(model, x_by_class, attack_fn: AttackFn | None = None) -> dict:
    """Appendix C (Figures 10-37): a targeted attack from the source image of each class (``x_by_class``
    (K, C, H, W), row k of class k) to every other class, all K(K-1) attacks in one batched call of
    ``attack_fn(model, x, target) -> x_adv`` (default :func:`ascent_attack`).

    Returns ``images`` (K, K, C, H, W) indexed [target, source] (rows are target classes, columns source
    classes, as in the paper), the source itself on the diagonal; ``pred`` (K, K) the model's class of each
    cell; ``success`` (K, K) = ``pred == target row`` (on the diagonal: the source is classified correctly);
    ``target_prob`` (K, K) the softmax probability of the row's class; ``linf`` / ``l2`` (K, K) the distance
    from the source (0 on the diagonal).
    """
    attack_fn = attack_fn or ascent_attack()
    xs = torch.as_tensor(x_by_class, dtype=torch.float32)
    k = len(xs)
    tgt, src = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
    off = tgt != src
    t_idx, s_idx = torch.as_tensor(tgt[off]), torch.as_tensor(src[off])
    with fp32_eval(model):
        device = next(model.parameters()).device
        adv = attack_fn(model, xs[s_idx].to(device), t_idx.to(device)).detach().float().cpu()
        grid = xs[None].repeat(k, 1, 1, 1, 1)  # [target, source]: the diagonal keeps the source
        grid[t_idx, s_idx] = adv
        with torch.no_grad():
            logits = model(grid.flatten(0, 1).to(device)).float().cpu()
    prob = F.softmax(logits, 1).view(k, k, -1)
    pred = logits.argmax(1).view(k, k).numpy()
    delta = (grid - xs[None]).flatten(2)
    rows = torch.arange(k)
    return {"images": grid.numpy(), "pred": pred, "success": pred == tgt,
            "target_prob": prob[rows[:, None], rows[None, :], rows[:, None]].numpy(),
            "linf": delta.abs().amax(2).numpy(), "l2": delta.norm(dim=2).numpy()}


# ------------------------------------------------------------------------------------------- rule wrappers
def _test_set(model_path, data_path, n_test, device):
    from .evaluate import load_test_set
    model, meta, _, x, y = load_test_set(model_path, data_path, n_test, device)
    return model, meta, x, y


def _meta_fields(meta) -> dict:
    return {k: meta[k] for k in ("dataset", "arch", "method", "seed") if k in meta}


def run_first_layer(model_path, data_path, out_npz, image_class: int = 1, n_kernels: int = 4, pad: int = 32,
                    device="cpu", log=print) -> dict:
    """Figure 1 of one checkpoint: the first test image of class ``image_class`` (1 = star on four-shapes)."""
    from .io import atomic_savez
    model, meta, x, y = _test_set(model_path, data_path, None, device)
    idx = np.flatnonzero(y.cpu().numpy() == image_class)
    if not len(idx):
        raise ValueError(f"no test image of class {image_class}")
    out = first_layer_view(model, x[idx[0]], n_kernels, pad)
    out.update(test_position=int(idx[0]), image_class=image_class, **_meta_fields(meta))
    atomic_savez(out_npz, **out)
    log(f"{meta.get('method')}: first layer {out['kernels'].shape}, image #{idx[0]}")
    return out


def run_fgsm_minimal(model_path, data_path, out_npz, eps_grid, n_test=None, batch_size: int = 500, device="cpu",
                     log=print) -> dict:
    """Figure 2, per checkpoint: minimal-eps FGSM of the first ``n_test`` test images (combine the models with
    :func:`deceptive_across_models`)."""
    from .io import atomic_savez
    model, meta, x, y = _test_set(model_path, data_path, n_test, device)
    out = fgsm_minimal(model, x, y, eps_grid, batch_size)
    atomic_savez(out_npz, **out, labels=y.cpu().numpy(), eps_grid=np.asarray(eps_grid), **_meta_fields(meta))
    log(f"{meta.get('method')}: FGSM fooled {out['fooled'].sum()} of {len(x)} "
        f"(median eps {np.nanmedian(out['eps']) if out['fooled'].any() else float('nan'):.3f})")
    return out


def run_class_images(model_path, out_npz, steps: int = CLASS_IMAGE_STEPS, lr: float = CLASS_IMAGE_LR,
                     seed: int = 0, step: str = "plain", objective: str = "logit", device="cpu", log=print) -> dict:
    """Figures 3-6 of one checkpoint (no data needed: the shape comes from the checkpoint's meta)."""
    from .evaluate import load_model
    from .io import atomic_savez
    model, meta = load_model(model_path, device)
    out = class_images(model, meta["num_classes"], (meta["in_channels"], meta["image_size"], meta["image_size"]),
                       steps, lr, seed, step=step, objective=objective, record_every=max(1, steps // 50))
    atomic_savez(out_npz, **out, **_meta_fields(meta))
    hit = (out["pred"] == out["target"]).mean()
    log(f"{meta.get('method')}: class images, {steps} steps of {lr:g}: {100 * hit:.0f}% reach their class")
    return out


def run_targeted(model_path, data_path, out_npz, attack_fn: AttackFn | None = None, n_test=None, device="cpu",
                 log=print) -> dict:
    """Appendix C of one checkpoint: sources = the first correctly classified test image of each class."""
    from .io import atomic_savez
    model, meta, x, y = _test_set(model_path, data_path, n_test, device)
    k = meta["num_classes"]
    src = pick_sources(model, x, y, k)
    if (src < 0).any():
        from .errors import DataError
        raise DataError(f"the first {len(y)} test images have no example of classes "
                        f"{np.flatnonzero(src < 0).tolist()}: raise smooth_kernels.targeted.n_test")
    out = targeted_grid(model, x[torch.as_tensor(src)], attack_fn)
    out.update(source_positions=src, **_meta_fields(meta))
    atomic_savez(out_npz, **out)
    off = ~np.eye(k, dtype=bool)
    log(f"{meta.get('method')}: targeted grid, {out['success'][off].mean() * 100:.0f}% of attacks reach the target")
    return out
