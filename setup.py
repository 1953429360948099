"setup.py for pgkd_nb in the nbdev 2 layout: every setting comes from settings.ini."
from configparser import ConfigParser
from pathlib import Path
import setuptools

cfg = ConfigParser(delimiters=['='])
cfg.read(Path(__file__).parent/'settings.ini', encoding='utf-8')
cfg = cfg['DEFAULT']

licenses = {'apache2': ('Apache Software License 2.0', 'OSI Approved :: Apache Software License')}
statuses = ['Planning', 'Pre-Alpha', 'Alpha', 'Beta', 'Production/Stable', 'Mature', 'Inactive']
lic = licenses[cfg['license']]
readme = Path(__file__).parent/'README.md'

setuptools.setup(
    name=cfg['lib_name'], version=cfg['version'], description=cfg['description'],
    long_description=readme.read_text(encoding='utf-8') if readme.exists() else cfg['description'],
    long_description_content_type='text/markdown',
    author=cfg['author'], author_email=cfg['author_email'], url=cfg['git_url'],
    license=lic[0], keywords=cfg['keywords'].split(), python_requires='>=' + cfg['min_python'],
    classifiers=['Development Status :: ' + str(int(cfg['status']) + 1) + ' - ' + statuses[int(cfg['status'])],
                 'Intended Audience :: ' + cfg['audience'].title(), 'License :: ' + lic[1],
                 'Natural Language :: ' + cfg['language'].title(), 'Programming Language :: Python :: 3'],
    packages=setuptools.find_packages(include=[cfg['lib_name'], cfg['lib_name'] + '.*']),
    include_package_data=True, package_data={cfg['lib_name']: ['embedded/*/*', 'templates/*.j2']},
    install_requires=cfg.get('requirements', '').split(),
    extras_require={'dev': cfg.get('dev_requirements', '').split(), 'local': ['llama-cpp-python'],
                    'export': cfg.get('export_requirements', '').split(), 'ray': cfg.get('ray_requirements', '').split(),
                    'track': cfg.get('track_requirements', '').split(),
                    'setfit': cfg.get('setfit_requirements', '').split()},
    entry_points={'console_scripts': cfg.get('console_scripts', '').split(),
                  'nbdev': [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"]},
    zip_safe=False)
