"""Rules sk_fgsm, sk_class_images, sk_targeted: one model's part of the smooth-kernel paper's figures (.npz)."""
from specrobust import smooth_kernels as sk
from specrobust.script import device, run


def main(sm, log):
    job, dev, out = sm.params.job, device(sm), sm.output[0]
    if job["figure"] == "figure2":
        grid = sk.foolbox2_fgsm_grid(job["epsilons"], job.get("max_epsilon", 1.0))
        sk.run_fgsm_minimal(sm.input.model, sm.input.data, out, grid, job["n_test"], job["batch_size"], dev, log)
    elif job["figure"] == "class_images":
        sk.run_class_images(sm.input.model, out, job["steps"], job["lr"], job.get("seed", 0), device=dev, log=log)
    else:
        attack = sk.ascent_attack(steps=job["steps"], lr=job["lr"])
        sk.run_targeted(sm.input.model, sm.input.data, out, attack, job.get("n_test"), dev, log)


run(snakemake, main)  # noqa: F821
