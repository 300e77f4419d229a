"""The smooth-kernel paper's minimal-perturbation attacks (its Table 1 and Appendix B): FGSM, PGD, DeepFool L2 and
L-inf, C&W L2, ADef, salt-and-pepper.

The paper ran them "with the default parameters in Foolbox" (foolbox 2, 2019-2020) and unbounded on
MNIST/Fashion-MNIST: an attack that finds no adversarial example under those defaults counts as robust. Those are
searches for the smallest adversarial perturbation, not fixed-eps attacks:

* :func:`fgsm_min`, :func:`pgd_min` and :func:`cw_l2` re-implement, batched in torch, foolbox 2's
  ``GradientSignAttack`` (line search over 1000 epsilons), ``ProjectedGradientDescentAttack`` (exponential then
  binary search over eps) and ``CarliniWagnerL2Attack`` (binary search over the constant, per-example early abort),
  with foolbox 2's defaults (foolbox 2.0-2.4 share them);
* DeepFool and salt-and-pepper run through foolbox 3 (``foolbox==3.3.4``) with its defaults;
* foolbox 3 dropped ADef, so :func:`adef` re-implements the paper (Alaifari, Alberti, Gauksson, ICLR 2019) with
  foolbox 2's ``ADefAttack`` defaults.

Like foolbox 2, the foolbox-2 re-implementations leave an example that is misclassified already alone (its
"adversarial" is x, distance 0), return x where the search fails, and otherwise return the adversarial of smallest
L2 distance (foolbox 2's default distance, MSE) among all the adversarial points the search evaluated.

Every attack is ``fn(model, x, y, eps=None, **options) -> x_adv`` with x in [0, 1] (N, C, H, W) and ``model`` in
eval mode returning logits; all are deterministic given torch's global seed (only salt-and-pepper draws from it).
``eps`` is how we read the paper's "limit the eps to 0.1 (L-inf difference)" for CIFAR-10: the attack runs
unbounded, and an example whose adversarial lies farther than eps from x in L-inf counts as not fooled (x itself
is returned, :func:`within`), so accuracy = the fraction not fooled within the bound. ``eps=None``: no bound.

Appendix B's accuracy-vs-size curves need the unbounded distances: :func:`run_minimal` runs an attack unbounded
once and returns both the bounded adversarial (for the table) and the per-example :func:`distances` (l0, l2, linf;
0 for examples misclassified already, inf for examples not fooled), from which :func:`accuracy_at` gives accuracy
at any bound, consistently with :func:`within`.
"""
from __future__ import annotations

import sys

import numpy as np
import torch
import torch.nn.functional as F


def _linf(x: torch.Tensor, x_adv: torch.Tensor) -> torch.Tensor:
    """Per-example L-inf size of x_adv - x (float64): the one value that both :func:`within` and
    :func:`distances` compare with a bound, so that a table count and its curve agree at the boundary."""
    return (x_adv - x).detach().flatten(1).abs().amax(1).double()


def _rows(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return mask.view(-1, *[1] * (like.dim() - 1))


def within(x: torch.Tensor, x_adv: torch.Tensor, eps: float | None) -> torch.Tensor:
    """``x_adv``, except ``x`` for examples whose adversarial is farther than eps in L-inf (no bound if None)."""
    if eps is None:
        return x_adv
    far = _linf(x, x_adv) > float(eps)
    return torch.where(_rows(far, x), x, x_adv)


def _foolbox(attack, model, x, y, eps):
    import foolbox as fb

    fmodel = fb.PyTorchModel(model, bounds=(0, 1), device=x.device)
    x_adv, _, _ = attack(fmodel, x.detach(), y, epsilons=None)  # None: minimize, no early stop, no clipping
    return within(x, x_adv.detach(), eps)


def deepfool_l2(model, x, y, eps=None):
    """DeepFool L2 (Moosavi-Dezfooli et al.), foolbox 3 defaults: 50 steps, top-10 candidate classes, overshoot
    0.02, logit differences."""
    import foolbox as fb
    return _foolbox(fb.attacks.L2DeepFoolAttack(), model, x, y, eps)


def deepfool_linf(model, x, y, eps=None):
    """DeepFool L-inf, foolbox 3 defaults as for :func:`deepfool_l2`."""
    import foolbox as fb
    return _foolbox(fb.attacks.LinfDeepFoolAttack(), model, x, y, eps)


def salt_pepper(model, x, y, eps=None, steps=1000):
    """Salt-and-pepper noise of growing density until misclassified (black box), foolbox 3 defaults: ``steps``
    1000 (one forward pass each, however early the images are fooled), the same noise across channels; the least
    (L2) noisy adversarial is kept. Its noise comes from torch's global RNG on x's device, so it is reproducible
    given the seed that ``evaluate_attack`` sets before each evaluation."""
    import foolbox as fb
    return _foolbox(fb.attacks.SaltAndPepperNoiseAttack(steps=steps), model, x, y, eps)


# ------------------------------------------------------------------------------------------------------------ ADef
def _reflect_index(size: int, radius: int, device) -> torch.Tensor:
    """Indices of an axis padded by ``radius`` in scipy.ndimage's 'reflect' mode (d c b a | a b c d | d c b a)."""
    i = torch.arange(-radius, size + radius, device=device) % (2 * size)
    return torch.where(i < size, i, 2 * size - 1 - i)


def gaussian_smooth(field: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian filter of every 2-D slice of (N, C, H, W), as scipy.ndimage.gaussian_filter with its defaults
    (kernel truncated at 4 sigma, 'reflect' boundary), which foolbox 2's ADef applies to its vector fields."""
    if sigma <= 0:
        return field
    n, c, h, w = field.shape
    radius = int(4 * sigma + 0.5)
    t = torch.arange(-radius, radius + 1, device=field.device, dtype=field.dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    out = field.reshape(n * c, 1, h, w)[:, :, _reflect_index(h, radius, field.device)]
    out = F.conv2d(out, k.view(1, 1, -1, 1))[..., _reflect_index(w, radius, field.device)]
    return F.conv2d(out, k.view(1, 1, 1, -1)).reshape(n, c, h, w)


def deform(x: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    """x resampled at u + tau(u): bilinear, sample points clamped to the image. ``tau`` is (N, 2, H, W) in pixels,
    ``tau[:, 0]`` along the width, ``tau[:, 1]`` along the height. The same operation as ``grid_sample(x, ...,
    align_corners=True, padding_mode='border')`` and foolbox 2's clipped linear spline, written with gathers so
    that a zero field returns x bit for bit (grid_sample's normalized coordinates round)."""
    n, c, h, w = x.shape
    py = (torch.arange(h, device=x.device, dtype=x.dtype).view(1, h, 1) + tau[:, 1]).clamp(0, h - 1)
    px = (torch.arange(w, device=x.device, dtype=x.dtype).view(1, 1, w) + tau[:, 0]).clamp(0, w - 1)
    y0, x0 = py.floor().clamp(max=max(h - 2, 0)), px.floor().clamp(max=max(w - 2, 0))
    wy, wx = (py - y0).unsqueeze(1), (px - x0).unsqueeze(1)
    y0, x0 = y0.long(), x0.long()
    y1, x1 = (y0 + 1).clamp(max=h - 1), (x0 + 1).clamp(max=w - 1)
    flat = x.reshape(n, c, h * w)

    def at(iy, ix):
        return flat.gather(2, (iy * w + ix).view(n, 1, h * w).expand(n, c, h * w)).view(n, c, h, w)

    top = at(y0, x0) * (1 - wx) + at(y0, x1) * wx
    bottom = at(y1, x0) * (1 - wx) + at(y1, x1) * wx
    return top * (1 - wy) + bottom * wy


def adef_field(model, x, y, *, max_iter: int = 100, smooth: float = 1.0, subsample: int = 10):
    """ADef (Alaifari et al. 2019) with foolbox 2's ``ADefAttack`` defaults; returns (x_adv, tau, fooled).

    Each step linearizes, for every candidate label k, the binary classifier f = F_k - F_y around the current
    deformed image x_n: f(x o (id + tau)) ~ f(x_n) + <alpha, tau> with alpha(u) = sum_c grad f(u)_c grad x_n(u)_c
    (central differences). The smallest field solving it is tau = -f alpha / ||alpha||^2; foolbox smooths alpha
    with a Gaussian (sigma ``smooth``) before the norm and once more after it. The new total field is the old one
    plus the step of smallest L2 norm over the candidates (the ``subsample`` - 1 labels ranked after the top one on
    the clean image), and it is always applied to the original x. Stops per example once misclassified, after
    ``max_iter`` steps, or when no candidate gives a finite step; examples not fooled come back as x.
    (foolbox 2 has no overshoot and no max_norm; the authors' own code's overshoot is not foolbox's default.)
    """
    x, y = x.detach(), y.detach()
    n = len(x)
    with torch.no_grad():
        logits = model(x)
    cand = logits.argsort(1, descending=True)[:, 1:min(subsample, logits.shape[1])]
    tau = x.new_zeros(n, 2, *x.shape[2:])
    x_def = x.clone()
    todo = logits.argmax(1) == y          # correctly classified, not yet fooled
    fooled = ~todo
    for _ in range(max_iter):
        idx = todo.nonzero().flatten()
        if not len(idx):
            break
        xi = x_def[idx].requires_grad_(True)
        out = model(xi)
        rows = torch.arange(len(idx), device=x.device)
        dx, dy = torch.gradient(xi.detach(), dim=(3, 2))   # along the width, along the height
        best, best_norm = tau[idx], torch.full((len(idx),), float("inf"), device=x.device, dtype=x.dtype)
        for r in range(cand.shape[1]):
            f = out[rows, cand[idx, r]] - out[rows, y[idx]]
            g, = torch.autograd.grad(f.sum(), xi, retain_graph=r + 1 < cand.shape[1])
            alpha = torch.stack([(g * dx).sum(1), (g * dy).sum(1)], 1)
            alpha = gaussian_smooth(alpha, smooth)
            norm2 = alpha.square().sum((1, 2, 3))
            alpha = gaussian_smooth(alpha, smooth)
            step = tau[idx] - (f.detach() / norm2).view(-1, 1, 1, 1) * alpha
            norm = step.flatten(1).norm(dim=1)
            norm = torch.where((norm2 > 0) & norm.isfinite(), norm, float("inf"))
            better = norm < best_norm
            best = torch.where(better.view(-1, 1, 1, 1), step, best)
            best_norm = torch.where(better, norm, best_norm)
        stuck = best_norm.isinf()
        todo[idx[stuck]] = False
        idx, best = idx[~stuck], best[~stuck]
        tau[idx] = best
        x_def[idx] = deform(x[idx], best)
        with torch.no_grad():
            now = model(x_def[idx]).argmax(1) != y[idx]
        fooled[idx[now]], todo[idx[now]] = True, False
    keep = fooled.view(-1, 1, 1, 1)
    return torch.where(keep, x_def, x), torch.where(keep, tau, 0.0), fooled


def adef(model, x, y, eps=None):
    """ADef with foolbox 2's defaults (max_iter 100, smooth 1.0, subsample 10); see :func:`adef_field`."""
    return within(x, adef_field(model, x, y)[0], eps)


# ------------------------------------------------------------------------------------ foolbox 2's gradient attacks
def _clean_correct(model, x, y) -> torch.Tensor:
    with torch.no_grad():
        return model(x).argmax(1) == y


def _ce_grad(model, x, y) -> torch.Tensor:
    """Gradient of the cross-entropy to y w.r.t. x, one example's own (sum over the batch; eval mode)."""
    x = x.detach().requires_grad_(True)
    grad, = torch.autograd.grad(F.cross_entropy(model(x), y, reduction="sum"), x)
    return grad


class _Best:
    """Per example, the adversarial of smallest squared L2 distance to x offered so far (foolbox 2 keeps the best by
    its default distance, MSE, which orders the same way; ties keep the earlier one). Starts as x, distance inf."""

    def __init__(self, x: torch.Tensor):
        self.x, self.adv = x, x.clone()
        self.d2 = torch.full((len(x),), float("inf"), dtype=torch.float64, device=x.device)

    def offer(self, idx: torch.Tensor, cand: torch.Tensor):
        if not len(idx):
            return
        d2 = (cand - self.x[idx]).flatten(1).double().square().sum(1)
        better = d2 < self.d2[idx]
        self.adv[idx[better]] = cand[better]
        self.d2[idx[better]] = d2[better]


def _first_adversarial(model, x, y, direction, grids: torch.Tensor, batch_elems: int) -> torch.Tensor:
    """For each example i, the first index k such that clip(x_i + grids[i, k] * direction_i, 0, 1) is misclassified
    (-1 if none), scanning grids[i] in order. Forward passes of at most ``batch_elems`` input values; an example
    leaves the scan at its first hit (later values of the same chunk are evaluated and ignored)."""
    m, k = grids.shape
    first = torch.full((m,), -1, dtype=torch.long, device=x.device)
    alive = torch.arange(m, device=x.device)
    per = x[0].numel() if m else 1
    start = 0
    while start < k and len(alive):
        c = max(1, min(k - start, batch_elems // (per * len(alive))))
        e = grids[alive, start:start + c].to(x.dtype).view(len(alive), c, *[1] * (x.dim() - 1))
        cand = (x[alive, None] + direction[alive, None] * e).clamp(0, 1)
        with torch.no_grad():
            pred = model(cand.flatten(0, 1)).argmax(1).view(len(alive), c)
        hit = pred != y[alive, None]
        found = hit.any(1)
        first[alive[found]] = start + hit[found].float().argmax(1)   # argmax of 0/1: the first 1
        alive = alive[~found]
        start += c
    return first


def _fgsm_search(model, x, y, epsilons=1000, max_epsilon=1.0, batch_elems=2 ** 20) -> torch.Tensor:
    x, y = x.detach(), y.detach()
    x_adv = x.clone()
    idx = _clean_correct(model, x, y).nonzero().flatten()
    if not len(idx):
        return x_adv
    xs, ys = x[idx], y[idx]
    direction = _ce_grad(model, xs, ys).sign()          # gradient sign times (max - min) = 1
    refine = not hasattr(epsilons, "__iter__")
    grid = np.linspace(0, max_epsilon, int(epsilons) + 1)[1:] if refine else np.asarray(list(epsilons), float)
    m = len(idx)
    grids = torch.as_tensor(grid, device=x.device).expand(m, -1)
    first = _first_adversarial(model, xs, ys, direction, grids, batch_elems)
    eps = torch.full((m,), float("nan"), dtype=torch.float64, device=x.device)
    hit = first >= 0
    eps[hit] = grids[hit, first[hit]]
    # foolbox 2's second pass: 20 epsilons in (0, e] where e is the first hit among its first 20 (only for the
    # default integer grid) or, where the whole grid failed, the largest epsilon; keeps its first hit
    again = (hit & (first < 20)) if refine else torch.zeros_like(hit)
    again |= ~hit
    if again.any():
        top = torch.where(hit, eps, torch.full_like(eps, float(grid[-1])))[again].cpu().numpy()
        fine = torch.as_tensor(np.stack([np.linspace(0, t, 21)[1:] for t in top]), device=x.device)
        j = _first_adversarial(model, xs[again], ys[again], direction[again], fine, batch_elems)
        ok = j >= 0
        rows = again.nonzero().flatten()[ok]
        eps[rows] = fine[ok, j[ok]]     # a finer hit is never farther than the first one (clipping is monotone)
    done = ~eps.isnan()
    e = eps[done].to(x.dtype).view(-1, *[1] * (x.dim() - 1))
    x_adv[idx[done]] = (xs[done] + direction[done] * e).clamp(0, 1)
    return x_adv


def fgsm_min(model, x, y, eps=None, *, epsilons=1000, max_epsilon: float = 1.0, batch_elems: int = 2 ** 20):
    """FGSM as foolbox 2's ``GradientSignAttack`` runs it by default: one gradient sign of the cross-entropy at x,
    then a line search clip(x + e sign, 0, 1) over e in ``linspace(0, max_epsilon, epsilons + 1)[1:]`` (1000 values
    up to 1) that stops at the first misclassified point; when that is among the first 20 values it searches again
    over 20 values in (0, e] and keeps the first hit there; if no value fools the model it tries 20 values up to
    max_epsilon once more and otherwise fails (x). ``epsilons`` may also be a sequence (no refinement then, as in
    foolbox 2). Cost: one gradient and at most ~1020 forward passes per example, batched ``batch_elems`` input
    values at a time."""
    return within(x, _fgsm_search(model, x, y, epsilons, max_epsilon, batch_elems), eps)


def _pgd_try(model, x, y, eps, step, iterations, return_early, best, idx):
    """One run of foolbox 2's L-inf PGD at per-example eps and step (no random start); returns success per example
    and offers every adversarial iterate to ``best`` (rows ``idx``). The forward pass of an iterate's gradient
    also decides whether the previous step's result is adversarial, so each step costs one forward-backward."""
    view = (-1,) + (1,) * (x.dim() - 1)
    eps_, step_ = eps.to(x.dtype).view(view), step.to(x.dtype).view(view)
    cur = x.clone()
    alive = torch.arange(len(x), device=x.device)
    success = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    for it in range(iterations + 1):
        last = it == iterations
        xa = cur[alive].requires_grad_(not last)
        with torch.set_grad_enabled(not last):
            logits = model(xa)
        keep = torch.ones(len(alive), dtype=torch.bool, device=x.device)
        if it:                                       # xa is the previous step's result
            adv = logits.detach().argmax(1) != y[alive]
            best.offer(idx[alive[adv]], xa.detach()[adv])
            success[alive[adv]] = True
            if return_early:
                keep = ~adv
        if last or not keep.any():
            break
        grad, = torch.autograd.grad(F.cross_entropy(logits[keep], y[alive[keep]], reduction="sum"), xa)
        alive, grad = alive[keep], grad[keep]
        nxt = cur[alive] + step_[alive] * grad.sign()
        nxt = x[alive] + torch.max(torch.min(nxt - x[alive], eps_[alive]), -eps_[alive])
        cur[alive] = nxt.clamp(0, 1)
    return success


def _pgd_search(model, x, y, epsilon=0.3, stepsize=0.01, iterations=40, binary_search=20, return_early=True):
    x, y = x.detach(), y.detach()
    todo = _clean_correct(model, x, y).nonzero().flatten()
    best = _Best(x)
    if not len(todo):
        return best.adv
    k = 20 if binary_search is True else int(binary_search)
    factor = stepsize / epsilon                     # foolbox 2 keeps the step a fixed fraction of eps
    n, dev = len(todo), x.device
    eps = torch.full((n,), float(epsilon), dtype=torch.float64, device=dev)
    if not k:
        _pgd_try(model, x[todo], y[todo], eps, eps * factor, iterations, return_early, best, todo)
        return best.adv
    searching = torch.zeros(n, dtype=torch.bool, device=dev)    # False: exponential phase, True: bisection
    count = torch.zeros(n, dtype=torch.long, device=dev)
    good, bad = eps.clone(), torch.zeros_like(eps)
    active = torch.ones(n, dtype=torch.bool, device=dev)
    while active.any():
        a = active.nonzero().flatten()
        ok = _pgd_try(model, x[todo[a]], y[todo[a]], eps[a], eps[a] * factor, iterations, return_early, best,
                      todo[a])
        exp = ~searching[a]
        # exponential phase: eps, 1.5 eps, ... (k tries) until one succeeds; then bisection on (0, that eps]
        start = a[exp & ok]
        searching[start], good[start], bad[start], count[start] = True, eps[start], 0.0, 0
        grow = a[exp & ~ok]
        eps[grow] *= 1.5
        count[grow] += 1
        active[grow[count[grow] >= k]] = False       # "exponential search failed": x
        # bisection phase: k steps; the last one's result need not be the best: ``best`` holds that
        bis = a[~exp]
        good[bis] = torch.where(ok[~exp], eps[bis], good[bis])
        bad[bis] = torch.where(ok[~exp], bad[bis], eps[bis])
        count[bis] += 1
        active[bis[count[bis] >= k]] = False
        nxt = a[searching[a] & active[a]]
        eps[nxt] = (good[nxt] + bad[nxt]) / 2
    return best.adv


def pgd_min(model, x, y, eps=None, *, epsilon: float = 0.3, stepsize: float = 0.01, iterations: int = 40,
            binary_search: int | bool = 20, return_early: bool = True):
    """PGD as foolbox 2's ``ProjectedGradientDescentAttack`` (alias ``PGD``) runs it by default: L-inf sign-gradient
    ascent on the cross-entropy from x itself (no random start), ``iterations`` steps of ``stepsize``, each
    projected on the eps-ball and [0, 1], stopping at the first adversarial iterate (``return_early``); the step
    is ``stepsize / epsilon`` times the eps being tried (1/30 of it). The search over eps (``binary_search``
    True = 20): tries eps = 0.3, 0.45, 0.675, ... (x1.5, up to 20 tries; x where all fail), then 20 bisection steps
    on (0, first successful eps]. Returns the least-L2 adversarial iterate of all the tries. Cost: up to
    2 k x iterations forward-backward passes per example (1600 by default), fewer when it succeeds early."""
    return within(x, _pgd_search(model, x, y, epsilon, stepsize, iterations, binary_search, return_early), eps)


def _cw_search(model, x, y, binary_search_steps=5, max_iterations=1000, confidence=0.0, learning_rate=5e-3,
               initial_const=1e-2, abort_early=True):
    x, y = x.detach(), y.detach()
    best = _Best(x)
    todo = _clean_correct(model, x, y).nonzero().flatten()
    if not len(todo):
        return best.adv
    x0, y0, n, dev = x[todo], y[todo], len(todo), x.device
    att = torch.atanh((x0 - 0.5) / 0.5 * 0.999999)          # bounds (0, 1): [0, 1] -> [-1, 1] -> R
    recon = torch.tanh(att) * 0.5 + 0.5                        # close to, not exactly, x
    const = torch.full((n,), float(initial_const), dtype=torch.float64, device=dev)
    lower = torch.zeros_like(const)
    upper = torch.full_like(const, float("inf"))
    check = int(np.ceil(max_iterations / 10))
    for b in range(binary_search_steps):
        if b == binary_search_steps - 1 and binary_search_steps >= 10:
            const = upper.clamp(max=1e10)
        delta = torch.zeros_like(att)
        m, v = torch.zeros_like(att, dtype=torch.float64), torch.zeros_like(att, dtype=torch.float64)
        found = torch.zeros(n, dtype=torch.bool, device=dev)
        prev = torch.full((n,), float("inf"), dtype=torch.float64, device=dev)
        alive = torch.arange(n, device=dev)
        for it in range(max_iterations):
            d = delta[alive].requires_grad_(True)
            xm = torch.tanh(att[alive] + d) * 0.5 + 0.5
            logits = model(xm)
            ya = y0[alive]
            adv = logits.detach().argmax(1) != ya
            best.offer(todo[alive[adv]], xm.detach()[adv])
            other = logits.detach().scatter(1, ya[:, None], float("-inf")).argmax(1)
            rows = torch.arange(len(alive), device=dev)
            margin = F.relu(logits[rows, ya] - logits[rows, other] + confidence)     # gradient 0 at 0, as foolbox 2
            dist = (xm - recon[alive]).flatten(1).square().sum(1)
            loss = dist + const[alive].to(x.dtype) * margin
            grad, = torch.autograd.grad(loss.sum(), d)
            t = it + 1                                       # every alive example has stepped at every iteration
            g = grad.double()
            m[alive] = 0.9 * m[alive] + 0.1 * g
            v[alive] = 0.999 * v[alive] + 0.001 * g * g
            step = learning_rate * (m[alive] / (1 - 0.9 ** t)) / ((v[alive] / (1 - 0.999 ** t)).sqrt() + 1e-8)
            delta[alive] = delta[alive] - step.to(delta.dtype)
            found[alive[adv]] = True
            if abort_early and it % check == 0:
                lval = dist.detach().double() + const[alive] * margin.detach().double()
                progress = lval <= 0.9999 * prev[alive]
                prev[alive[progress]] = lval[progress]
                alive = alive[progress]                      # no progress for a tenth of the steps: stop Adam
                if not len(alive):
                    break
        upper = torch.where(found, const, upper)
        lower = torch.where(found, lower, const)
        const = torch.where(upper.isinf(), const * 10, (lower + upper) / 2)
    return best.adv


def cw_l2(model, x, y, eps=None, *, binary_search_steps: int = 5, max_iterations: int = 1000,
          confidence: float = 0.0, learning_rate: float = 5e-3, initial_const: float = 1e-2, abort_early: bool = True):
    """Carlini & Wagner L2 as foolbox 2's ``CarliniWagnerL2Attack`` runs it by default: Adam (lr 5e-3) in tanh space
    on ||x' - x~||^2 + c max(0, Z_y - max_{k != y} Z_k + confidence) (x~: x through tanh and back), per example;
    ``binary_search_steps`` (5) values of c from 1e-2 (x10 until an adversarial is found, then bisection); each
    runs ``max_iterations`` (1000) Adam steps, or fewer: with ``abort_early``, an example stops when its loss at
    a tenth of the steps has not fallen below 0.9999 times its loss at the previous tenth. Returns the least-L2
    adversarial iterate seen (x if none). Cost: up to 5000 forward-backward passes per example; the quick
    configuration can shrink ``max_iterations`` / ``binary_search_steps``."""
    return within(x, _cw_search(model, x, y, binary_search_steps, max_iterations, confidence, learning_rate,
                                initial_const, abort_early), eps)


# ------------------------------------------------------------------------------------------------------- registry
ATTACKS = {
    "fgsm_min": fgsm_min,
    "pgd_min": pgd_min,
    "deepfool_l2": deepfool_l2,
    "deepfool_linf": deepfool_linf,
    "cw_l2": cw_l2,
    "adef": adef,
    "salt_pepper": salt_pepper,
}
"""The smooth-kernel paper's Table 1 attacks in its column order (without "clean"); names are this module's
functions. Callers should look them up with ``getattr(minimal_attacks, name)`` (as :func:`run_minimal` does) so
that a monkeypatched function is the one that runs."""


# -------------------------------------------------------------------------------------- distances (Appendix B)
def distances(x: torch.Tensor, x_adv: torch.Tensor, fooled) -> dict[str, np.ndarray]:
    """Per-example size of x_adv - x (float64 arrays): ``l0`` the number of changed values (foolbox 2's ``L0``
    distance: each colour channel of a pixel counts), ``l2`` the Euclidean norm, ``linf`` the largest change (the
    value :func:`within` compares with eps); +inf for examples not ``fooled`` (bool, one per example). An example
    misclassified already has x_adv = x, hence distance 0, and must be passed as fooled. Values are on the [0, 1]
    pixel scale (foolbox 2's normalized Linf; its MSE is l2^2 / size, not reported)."""
    fooled = torch.as_tensor(fooled, device="cpu").bool().numpy()
    diff = (x_adv - x).detach().flatten(1)
    out = {"l0": (diff != 0).sum(1).double(), "l2": diff.double().norm(dim=1), "linf": _linf(x, x_adv)}
    return {k: np.where(fooled, v.cpu().numpy(), np.inf) for k, v in out.items()}


def robust_at(dist, bound: float | None) -> np.ndarray:
    """Per example: not fooled within ``bound`` (dist > bound, or not fooled at all: dist inf); None: no bound.
    For the linf distances this is exactly the correctness that :func:`within` leaves."""
    dist = np.asarray(dist, dtype=np.float64)
    return np.isinf(dist) | (False if bound is None else dist > float(bound))


def accuracy_at(dist, bounds) -> np.ndarray:
    """Accuracy (%, as :func:`specrobust.evaluate.accuracy`) at each bound: the share of examples with distance >
    bound or not fooled at all (inf). Non-increasing in the bound; at an inf bound, the examples not fooled; NaN
    for no examples. The one definition of Appendix B's accuracy-vs-size curves (and, for linf at the run's eps,
    of Table 1's count: see :func:`robust_at`)."""
    dist = np.asarray(dist, dtype=np.float64).reshape(-1)
    b = np.asarray(bounds, dtype=np.float64).reshape(-1)
    if not len(dist):
        return np.full(len(b), np.nan)
    return 100 * (np.isinf(dist)[None, :] | (dist[None, :] > b[:, None])).mean(1)


def run_minimal(kind, model, x, y, bound: float | None = None, **options):
    """One unbounded run of a minimal attack (a name in :data:`ATTACKS` or a function) -> (x_bounded, distances).

    The adversarial is normalized first: x for examples misclassified already (distance 0) and for examples the
    attack did not fool (distance inf; foolbox 3's DeepFool returns its last, non-adversarial iterate there).
    ``x_bounded`` is :func:`within` (x, adversarial, bound), what Table 1 counts; ``distances`` the unbounded
    per-example sizes, so accuracy at any bound is :func:`accuracy_at` of them and
    ``robust_at(distances["linf"], bound)`` equals the correctness the table counts."""
    fn = getattr(sys.modules[__name__], kind) if isinstance(kind, str) else kind
    x, y = x.detach(), y.detach()
    clean = _clean_correct(model, x, y)
    x_adv = fn(model, x, y, None, **options).detach()
    with torch.no_grad():
        fooled = ~clean | (model(x_adv).argmax(1) != y)
    x_adv = torch.where(_rows(clean & fooled, x), x_adv, x)
    return within(x, x_adv, bound), distances(x, x_adv, fooled)
