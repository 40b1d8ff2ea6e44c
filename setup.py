from setuptools import find_packages, setup


def readme() -> str:
    with open('README.md', encoding='utf-8') as f:
        return f.read()


setup(
    name='higherhrnet_plugin',
    version='0.1.0',
    description='HigherHRNet (bottom-up pose estimation with associative embedding) '
    'as a plugin for mmpose 1.x',
    long_description=readme(),
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('tests', 'tools', 'configs')),
    python_requires='>=3.9',
    # The OpenMMLab stack cannot be resolved by pip alone (mmcv has no wheels, mmpose lists
    # chumpy): tools/setup_env.sh installs it, so only light dependencies are declared here.
    install_requires=['numba', 'numpy', 'scipy'],
    license='Apache-2.0',
    zip_safe=False,
)
