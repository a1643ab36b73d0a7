"""Real public datasets for the OncoLab book: one registry, checksummed downloads, converters.

Every download goes through :func:`data_scripts.registry.fetch`, which uses ``pooch`` with the
checksum written in the registry; each dataset module converts the original files into the
formats the book reads (PNG + labels table, a YOLO dataset, clinical + expression tables).

    python -m data_scripts.registry list
    python -m data_scripts.medmnist pathmnist OUT_DIR
    python -m data_scripts.btxrd OUT_DIR
    python -m data_scripts.tcga TCGA-SARC OUT_DIR
    python -m data_scripts.metabric OUT_DIR
"""
