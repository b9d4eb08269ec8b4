"""An NNI trial script, written the NNI way (it knows nothing of ablate): a linear classifier
trained by SGD on scikit-learn's digits, one intermediate result per epoch."""

import nni
import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

DEFAULTS = {"alpha": 1e-4, "penalty": "l2", "eta0": 0.1, "epochs": 5}


def main(params):
    x, y = load_digits(return_X_y=True)
    x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)
    scaler = StandardScaler().fit(x_train)
    x_train, x_val = scaler.transform(x_train), scaler.transform(x_val)
    model = SGDClassifier(alpha=params["alpha"], penalty=params["penalty"], learning_rate="constant",
                          eta0=params["eta0"], random_state=0)
    classes = np.unique(y)
    accuracy = 0.0
    for _ in range(int(params["epochs"])):
        model.partial_fit(x_train, y_train, classes=classes)
        accuracy = model.score(x_val, y_val)
        nni.report_intermediate_result(accuracy)
    nni.report_final_result(accuracy)


if __name__ == "__main__":
    params = dict(DEFAULTS)
    params.update(nni.get_next_parameter())
    main(params)
