"""Real public datasets for the OncoLab book: one registry, checksummed downloads, converters.

Every download goes through :func:`data_scripts.registry.fetch`, which uses ``pooch`` with the
checksum written in the registry. Each dataset module converts the original files into the
cohort folder that ``oncolab.data.load_cohort`` reads and the book's page "Your own cohort"
documents (BTXRD also into a YOLO dataset for chapter 3, MedMNIST into PNG + a labels table);
:mod:`data_scripts.cohorts` holds what the converters share.

    python -m data_scripts.registry list
    python -m data_scripts.packaged breast_cancer OUT_DIR       (offline: scikit-survival, lifelines)
    python -m data_scripts.btxrd OUT_DIR --cohort
    python -m data_scripts.tcga TCGA-SARC OUT_DIR
    python -m data_scripts.metabric OUT_DIR --trust-on-first-use
    python -m data_scripts.medmnist pathmnist OUT_DIR
"""
