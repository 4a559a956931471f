"""Scaling out: a small conv net with LRNReLU trained with MultiWorkerMirroredStrategy by
two worker processes on 127.0.0.1 must follow the same path as one process trained on the
same global batches: the same losses and weights, to float32 tolerance."""
import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np

GLOBAL_BATCH = 16
STEPS = 4

TRAIN = textwrap.dedent("""
    import json, os, sys
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf
    import keras
    import alexops.layers

    out_path, global_batch, learning_rate = sys.argv[1], int(sys.argv[2]), 0.5
    strategy = (tf.distribute.MultiWorkerMirroredStrategy() if "TF_CONFIG" in os.environ
                else tf.distribute.get_strategy())
    data = np.load(os.path.join(os.path.dirname(out_path), "data.npz"))

    with strategy.scope():
        inputs = keras.Input((8, 8, 3))
        hidden = keras.layers.Conv2D(12, 3, padding="same")(inputs)
        hidden = alexops.layers.LRNReLU(depth_radius=2, bias=1.0, alpha=0.05, beta=0.75)(hidden)
        hidden = keras.layers.GlobalAveragePooling2D()(hidden)
        model = keras.Model(inputs, keras.layers.Dense(4)(hidden))
        model.set_weights([data[f"w{i}"] for i in range(len(model.weights))])

    dataset = tf.data.Dataset.from_tensor_slices((data["x"], data["y"])).batch(global_batch)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    batches = strategy.experimental_distribute_dataset(dataset.with_options(options))

    @tf.function
    def train_step(x, y):
        def replica_step(x, y):
            with tf.GradientTape() as tape:
                per_example = tf.reduce_mean(tf.square(model(x, training=True) - y), axis=1)
                loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
            return loss, tape.gradient(loss, model.trainable_variables)
        loss, grads = strategy.run(replica_step, args=(x, y))
        # Summed over the workers' shares of the global batch: the global batch's mean.
        loss = strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None)
        for variable, grad in zip(model.trainable_variables, grads):
            variable.assign_sub(learning_rate * strategy.reduce(tf.distribute.ReduceOp.SUM, grad, axis=None))
        return loss

    losses = [float(train_step(x, y)) for _ in range(2) for x, y in batches]
    np.savez(out_path, loss=np.array(losses), *model.get_weights())
""")


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def results(path):
    with np.load(path) as saved:
        return saved["loss"], [saved[f"arr_{i}"] for i in range(len(saved.files) - 1)]


def test_multi_worker_training_matches_one_process(tmp_path):
    import keras

    import alexops.layers

    rng = np.random.default_rng(0)
    samples = GLOBAL_BATCH * STEPS
    x = rng.standard_normal((samples, 8, 8, 3)).astype(np.float32)
    y = rng.standard_normal((samples, 4)).astype(np.float32)
    # One set of initial weights for every process.
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    hidden = keras.layers.Conv2D(12, 3, padding="same")(inputs)
    hidden = alexops.layers.LRNReLU(depth_radius=2, bias=1.0, alpha=0.05, beta=0.75)(hidden)
    hidden = keras.layers.GlobalAveragePooling2D()(hidden)
    model = keras.Model(inputs, keras.layers.Dense(4)(hidden))
    np.savez(tmp_path / "data.npz", x=x, y=y, **{f"w{i}": w for i, w in enumerate(model.get_weights())})
    script = tmp_path / "train.py"
    script.write_text(TRAIN)

    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.path.dirname(os.path.dirname(alexops.__file__)),
                                                      env.get("PYTHONPATH")]))
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    processes = []
    for index in range(2):
        config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        processes.append(subprocess.Popen(
            [sys.executable, str(script), str(tmp_path / f"worker{index}.npz"), str(GLOBAL_BATCH)],
            env={**env, "TF_CONFIG": json.dumps(config)}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True))
    single = subprocess.run([sys.executable, str(script), str(tmp_path / "single.npz"), str(GLOBAL_BATCH)],
                            env=env, capture_output=True, text=True, timeout=150)
    outputs = []
    try:
        for process in processes:
            outputs.append(process.communicate(timeout=150)[0])
    finally:
        for process in processes:
            process.kill()
    for index, process in enumerate(processes):
        assert process.returncode == 0, f"worker {index} failed:\n{outputs[index][:4000]}"
    assert single.returncode == 0, f"single process failed:\n{single.stderr[-3000:]}"

    single_loss, single_weights = results(tmp_path / "single.npz")
    assert len(single_loss) == 2 * STEPS
    assert single_loss[STEPS:].mean() < single_loss[:STEPS].mean(), single_loss  # it trains
    for index in range(2):
        loss, weights = results(tmp_path / f"worker{index}.npz")
        np.testing.assert_allclose(loss, single_loss, rtol=1e-5)
        for w, expected in zip(weights, single_weights):
            np.testing.assert_allclose(w, expected, rtol=1e-4, atol=1e-6)
