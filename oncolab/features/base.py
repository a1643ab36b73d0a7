"""What every transformer of :mod:`oncolab.features` shares: names, saving, and the fitted check.

Taught with the transformers themselves (chapter 1: :class:`~oncolab.features.IntensityHistogram`
and :class:`~oncolab.features.StainStatistics`; chapter 6: :class:`~oncolab.features.LabFeatures`;
chapter 7: :class:`~oncolab.features.GeneFeatures`; chapter 8:
:class:`~oncolab.features.ClinicalFeatures`; chapter 10: :class:`~oncolab.features.LesionMeasurements` and
:class:`~oncolab.features.NuclearMeasurements`).

* :class:`FeatureTransformer`: a scikit-learn transformer that names its output columns and
  saves itself without pickle. A subclass writes ``fit``, ``transform`` and three small
  methods (the names, the state, the rebuild); the public methods, their checks and their
  documentation are here, once.
* :class:`Measurements`: a :class:`FeatureTransformer` that learns nothing and applies one
  function to each patient's input (an image, an image and a box), one row per patient.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

__all__ = ["FeatureTransformer", "Measurements"]


class FeatureTransformer(TransformerMixin, BaseEstimator):
    """Base of the transformers of :mod:`oncolab.features`.

    Taught in chapters 1, 6, 7, 8 and 10, with the transformers built on it.

    A subclass implements ``fit`` and ``transform`` (calling :meth:`check_fitted` first) and:

    * ``__sklearn_is_fitted__()``: whether ``fit`` has run (scikit-learn's own test);
    * ``_names()``: the output column names of the fitted transformer;
    * ``_state()``: ``(config, arrays)``, JSON-ready settings and named float arrays;
    * ``_from_state(config, arrays)`` (a classmethod): the fitted transformer they describe.

    ``fit_hint`` completes the message of an unfitted transformer (``call <fit_hint> first``).
    """

    fit_hint = "fit(X)"

    def check_fitted(self) -> None:
        """Raise unless the transformer is fitted.

        Returns
        -------
        None

        Raises
        ------
        RuntimeError
            Naming the class and the call that fits it.
        """
        if not self.__sklearn_is_fitted__():
            raise RuntimeError(f"{type(self).__name__} is not fitted: call {self.fit_hint} first")

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """The names of the output columns, in order (the class docstring says which).

        Parameters
        ----------
        input_features : ignored
            The output is named by what was fitted.

        Returns
        -------
        numpy.ndarray
            Object array of names, one per output column.

        Raises
        ------
        RuntimeError
            When the transformer is not fitted.
        """
        self.check_fitted()
        return np.asarray(self._names(), dtype=object)

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """Settings (JSON-ready) and fitted arrays, for saving without pickle.

        Returns
        -------
        tuple of (dict, dict)
            The settings and the named arrays that :meth:`from_state` rebuilds the fitted
            transformer from (the class docstring says which).

        Raises
        ------
        RuntimeError
            When the transformer is not fitted.
        """
        self.check_fitted()
        return self._state()

    @classmethod
    def from_state(cls, config: dict, arrays: dict[str, np.ndarray]):
        """Rebuild a fitted transformer from :meth:`state`.

        Parameters
        ----------
        config : dict
            The settings of :meth:`state` (after a round trip through JSON).
        arrays : dict of str to numpy.ndarray
            The arrays of :meth:`state`.

        Returns
        -------
        FeatureTransformer
            An instance of the class it is called on, fitted.

        Raises
        ------
        TypeError
            When ``config`` or ``arrays`` is not a mapping.
        KeyError
            When a setting or an array the class needs is missing.
        ValueError
            When a subclass finds a value it cannot use (it names it).
        """
        if not isinstance(config, Mapping):
            raise TypeError(f"config must be the settings dict of {cls.__name__}.state(), got {type(config).__name__}")
        if not isinstance(arrays, Mapping):
            raise TypeError(f"arrays must be the dict of named arrays of {cls.__name__}.state(), "
                            f"got {type(arrays).__name__}")
        return cls._from_state(dict(config), dict(arrays))


class Measurements(FeatureTransformer):
    """A function of one patient's input, applied to every patient; learns nothing.

    Taught in chapter 1 (:class:`~oncolab.features.IntensityHistogram`) and chapter 10
    (:class:`~oncolab.features.LesionMeasurements`).

    A subclass implements ``_measure(item)`` (one patient's float64 row) and ``_names()``;
    one with settings (constructor parameters) also ``_settings()``, the checked settings as a
    JSON-ready dict, which are its whole state. ``transform`` stacks the rows into an
    ``(n, len(names))`` array.
    """

    fit_hint = "fit()"

    def _settings(self) -> dict:
        return {}

    def _measure(self, item) -> np.ndarray:
        raise NotImplementedError

    def _names(self) -> Sequence[str]:
        raise NotImplementedError

    def fit(self, X=None, y=None):
        """Check the settings; nothing to learn. Returns ``self``.

        Parameters
        ----------
        X : ignored
        y : ignored

        Returns
        -------
        Measurements
            ``self``.

        Raises
        ------
        ValueError
            When a setting is invalid (e.g. ``bins`` of :class:`~oncolab.features.IntensityHistogram`).
        """
        self._settings()
        return self

    def transform(self, X) -> np.ndarray:
        """Measure every patient.

        Parameters
        ----------
        X : iterable
            One input per patient, as the class docstring says (any iterable: images can be
            loaded lazily).

        Returns
        -------
        numpy.ndarray
            float64 array (n, len(get_feature_names_out())).

        Raises
        ------
        ValueError
            When a patient's input is invalid (the measuring function says why).
        """
        width = len(self._names())
        rows = [self._measure(item) for item in X]
        return np.array(rows, dtype=np.float64).reshape(-1, width)

    def __sklearn_is_fitted__(self) -> bool:
        return True

    def _state(self) -> tuple[dict, dict[str, np.ndarray]]:
        return self._settings(), {}

    @classmethod
    def _from_state(cls, config: dict, arrays: dict[str, np.ndarray]) -> Measurements:
        return cls(**config)
