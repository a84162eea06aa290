"""The yardstick every accuracy assertion must beat: always predicting the majority class."""

from collections import Counter
from collections.abc import Iterable

from kumiai.node.worker import SiteSplit


def majority_rate(splits: Iterable[SiteSplit]) -> float:
    """Test accuracy of predicting the most common training label, on the same split.

    The majority is taken from the training rows, the data a model sees; the rate from the
    test rows, where the model is scored.
    """
    splits = list(splits)
    majority, _ = Counter(label for s in splits for label in s.train_labels).most_common(1)[0]
    test = [label for s in splits for label in s.test_labels]
    return sum(label == majority for label in test) / len(test)
