"""ament_python package that is also pip-installable without ROS."""

from glob import glob

from setuptools import find_packages, setup

package_name = "spatialclaw_ros"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    package_data={package_name: ["tools/*.md", "session_log/*.html"]},
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        ("share/" + package_name + "/config", glob("config/*.yaml") + glob("config/*.xml")),
        ("share/" + package_name + "/launch", glob("launch/*.launch.py")),
        ("share/" + package_name + "/rviz", glob("rviz/*.rviz")),
    ],
    python_requires=">=3.10",
    install_requires=[
        "numpy>=1.24",
        "scipy>=1.10",
        "opencv-python-headless>=4.8",
        "pillow>=10",
        "openai>=1.40",
        "pyyaml>=6",
        "matplotlib>=3.7",
        # The kernel's OS sandbox layers (Linux): Landlock file-system rules and a seccomp filter.
        "landlock>=1.0.0.dev5",
        "pyseccomp>=0.1.2",
        "rosbags>=0.10",  # rosbag2 reading and writing without ROS (spatialclaw ask --bag, the bag player)
    ],
    extras_require={
        "scenes": ["open3d-cpu>=0.18"],
        "eval": ["pyarrow>=14"],  # the parquet layouts of MMSI-Bench, SPBench and BLINK (spatialclaw eval)
        "test": ["pytest>=8"],
    },
    zip_safe=True,
    maintainer="SpatialClaw ROS maintainers",
    maintainer_email="maintainers@spatialclaw-ros.dev",
    description="Code-as-action spatial question answering (SpatialClaw) for ROS 2",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "spatialclaw = spatialclaw_ros.cli:main",
            "spatialclaw_node = spatialclaw_ros.ros.entry:main",
            "spatialclaw_bag_player = spatialclaw_ros.ros.bag_player:main",
        ],
    },
)
