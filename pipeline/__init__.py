"""What the stage commands share: ``params.yaml`` access and its schema (``params``), artifact
paths, schemas and loaders (``artifacts``), the label store (``label_store``), the linear-head
helpers (``heads``), sampler options from params (``sampler_options``), torchrun plumbing
(``distributed``), and the commands around the pipeline that are not stages: ``al export`` /
``al import`` (``annotate``), ``al campaign`` (``campaign``), ``al set`` (``edit_params``), ``al
schedule`` (``schedule``) and ``al study`` (``study``). DVC-aware, unlike ``al_core``."""
