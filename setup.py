"""pip install for the Python side of hand_tracker (the ROS build is CMakeLists.txt)."""
from setuptools import find_packages, setup


setup(
    # not 'hand_tracker': that distribution name belongs to the generated msg package (colcon)
    name='hand_tracker_py',
    version='0.1.0',
    description='Hand detection, tracking and gestures for ROS 2, and the training of its '
                'detector',
    license='Apache-2.0',
    packages=find_packages(include=['hand_tracker_ros', 'hand_tracker_ros.*',
                                    'hand_tracker_training', 'hand_tracker_training.*']),
    python_requires='>=3.10',
    install_requires=[
        'numpy>=1.26', 'opencv-python-headless>=4.8', 'scipy>=1.10', 'PyYAML', 'tqdm',
        'matplotlib', 'pycocotools', 'motmetrics', 'protobuf', 'rosbags>=0.11',
    ],
    extras_require={
        'tf': ['tensorflow-cpu>=2.16'],
        'lite': ['ai-edge-litert>=1.0'],
    },
    entry_points={
        'console_scripts': [
            'hand-tracker = hand_tracker_ros.cli:main',
            'hand-tracker-train = hand_tracker_training.train:main',
            'hand-tracker-dataset = hand_tracker_training.datasets.cli:main',
            'hand-tracker-eval = hand_tracker_training.eval_cli:main',
            'hand-tracker-export = hand_tracker_training.export:main',
        ],
    },
)
