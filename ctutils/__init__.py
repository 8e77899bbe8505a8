"""ctutils: the tested helpers of the course "3D CNN classification of chest CT scans".

One module per step of the course, in the order the chapters teach them:

=================  ==========================================================
``io``             read NIfTI volumes in HU with their affine (chapter 01)
``orientation``    RAS+ reorientation and radiological display (01)
``datasets``       dataset registry, class folders, labels (01)
``download``       the real MosMedData download (01)
``phantoms``       one synthetic chest CT, graded like MosMedData, with its masks (01)
``synthetic``      the embedded synthetic dataset: layouts, grades, masks (01)
``realism``        how close a phantom's HU are to a real chest CT's (01)
``intensity``      HU windowing (02)
``resample``       resizing and resampling to a spacing in mm (02)
``preprocess``     the preprocessing presets (02)
``splits``         stratified train/val/test splits (02)
``cache``          the memory-mapped cache of preprocessed volumes (02)
``baseline``       the one-feature baseline (02, 06)
``augment``        augmentation in TensorFlow ops (03)
``pipeline``       the tf.data input pipeline (03)
``models``         the reference 3D CNN and alternatives (04)
``training``       training recipes, checkpoints, resume (05)
``runs``           a run folder's file names, its preprocess.json, does a model fit a cache (05, 06)
``experiments``    the seeds study and the course's measured comparisons (04-06)
``evaluation``     metrics with confidence intervals, calibration, CNN against baseline (06)
``explain``        Grad-CAM for 3-D CNNs (06)
``plotting``       montages, viewer, curves (all chapters)
``predict``        single-scan prediction (06)
``exercises``      checks for the chapters' exercises: one module per chapter (``ch00_setup`` …)
``tfimport``       TensorFlow and Keras without TensorFlow's C++ start-up log (00)
``frontend``       live notebook, batch run or terminal: widgets, progress bars, paths (all)
``machine``        the CPU cores this process may use (all)
``atomic``         atomic writes: files, JSON, notebooks (all)
``course``         what every chapter uses: profiles, paths, artefacts built when missing, metrics
``runner``         the batch runner: every chapter with papermill, then a summary
``student``        student copies: solutions replaced by stubs
``classroom``      nbgrader: the chapters' metadata, a course folder to release and autograde
``colab``          the "Open in Colab" badges, pointing them at a fork
``cli``            ``python -m ctutils …``
=================  ==========================================================

Importing ``ctutils`` imports nothing heavy; TensorFlow is imported only by the modules that
need it (augment, pipeline, models, training, explain, predict), through ``tfimport``.
"""

__version__ = "0.1.0"
